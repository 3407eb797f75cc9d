"""The local server: the real handlers on an embedded AWS emulator (`python -m devserver`)."""
