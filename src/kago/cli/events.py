"""``kago events``: docker's events from the root's event log (kago.manager.events).

Without ``--until`` it follows the log until Ctrl-C (docker's); ``--since`` shows what
happened before, whether or not anybody was listening then."""

import sys

from kago.cli.common import Usage, client, parser


def cmd_events(glob, argv):
    p = parser("events", "Show what kago did to containers, images, networks and volumes "
                         "(docker's events); without --until, follow new ones until Ctrl-C.")
    p.add_argument("--since", help="events since a time (unix time, RFC 3339, or 10m...)")
    p.add_argument("--until", help="events until a time (then stop following)")
    p.add_argument("-f", "--filter", action="append", default=[],
                   help="type=container|image|network|volume, event=, container=, image=, "
                        "label=K[=V], network=, volume= (repeat a key for either value)")
    p.add_argument("--format", help="json, or a Go template ('{{json .}}', '{{.Action}}')")
    args = p.parse_args(argv)
    from kago.manager import events as E
    from kago.manager import format as F
    show = _shower(args.format, E, F)
    try:
        for doc in client(glob).events(args.since, args.until, args.filter):
            try:
                text = show(doc)
            except F.TemplateError as e:
                raise Usage(f"events --format: {e}") from None
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
    except KeyboardInterrupt:  # Ctrl-C ends a follow: not an error
        return 0
    return 0


def _shower(fmt, E, F):
    if not fmt:
        return E.line
    if fmt == "json":
        import json
        return json.dumps
    return lambda doc: F.render(fmt, doc)
