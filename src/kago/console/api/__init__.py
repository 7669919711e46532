"""The console's JSON API, one module per kind of object (docs/console.md, "API")."""
