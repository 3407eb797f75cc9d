"""enquiries: a serverless backend for the contact forms of static websites."""

import os

# pydantic looks for plugins the first time a model is built by reading the entry points of every
# installed distribution (16 ms of the cold start measured with -X importtime here); this project
# uses none.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
