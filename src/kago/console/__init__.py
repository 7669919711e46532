"""``kago console``: a web console (pages and a JSON API) over the same ``kago.Client`` the
command line uses; docs/console.md. The web stack (starlette, uvicorn) is imported by this
package's modules only, so no other kago command pays for it."""
