"""`python -m devserver [--host 127.0.0.1] [--port 3000]`: the local server (see devserver.server)."""

from devserver.server import main

raise SystemExit(main())
