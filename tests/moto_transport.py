"""aws_json's transport in the tests: each request, signed and serialised as the function sends it,
is handed to the moto that `mock_aws` runs in this process, the way moto answers botocore's own
requests (its before-send handler). The tests' boto3 clients and the functions' aws_json clients then
share one moto, as they share one AWS on Lambda.

The HTTP under it (aws_json.HttpTransport) is not this: the local server's tests, the emulator's and
tests/test_aws_json_faults.py send real requests, to a moto server and to a server that answers with faults.
"""

from __future__ import annotations

from http import HTTPStatus

from enquiries.aws_json import Answer


class MotoTransport:
    def __init__(self, endpoint: str, *_: object) -> None:
        self.endpoint = endpoint
        self.requests = 0

    def send(self, headers: dict[str, str], body: bytes) -> Answer:
        from botocore.awsrequest import AWSPreparedRequest
        from botocore.compat import HTTPHeaders
        from moto.core.models import botocore_stubber

        self.requests += 1
        prepared = HTTPHeaders()
        for name, value in headers.items():
            prepared[name] = value
        request = AWSPreparedRequest("POST", self.endpoint + "/", prepared, body, stream_output=False)
        answered = botocore_stubber.process_request(request)
        if answered is None:
            raise AssertionError(f"moto did not answer a request to {self.endpoint}: is mock_aws on?")
        status, answer_headers, answer_body = answered
        return Answer(
            int(status),
            HTTPStatus(int(status)).phrase,
            {str(name).lower(): str(value) for name, value in answer_headers.items()},
            answer_body.encode("utf-8") if isinstance(answer_body, str) else bytes(answer_body),
        )

    def close(self) -> None:
        pass
