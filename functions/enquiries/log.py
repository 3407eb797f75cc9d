"""The structured logger every function shares. Log ids, statuses and reasons; never enquiry content."""

import os

from aws_lambda_powertools import Logger

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "enquiries"))
