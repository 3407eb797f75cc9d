"""Lambda entry point of the submission function: POST /enquiries behind an HTTP API (payload 2.0).

Settings are read at import, so a misconfigured deployment fails at init naming the variable. The
secrets the function needs are read at import too (the first request would read them anyway): one that
cannot be read is logged once, naming its setting, and each request that needs it answers 503.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from enquiries.api.app import SubmissionApi, build_app
from enquiries.api.services import Services, services_from, stored_secrets
from enquiries.api.warm_up import answer_warm_up, is_warm_up
from enquiries.log import set_correlation_id, with_invocation_keys
from enquiries.settings import SUBMISSION_REQUIRES, Settings, load_settings
from enquiries.snapstart import prepare_snapshot, snapshot_init
from enquiries.stored_secret import read_at_init
from enquiries.submission import utc_now

LambdaHandler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]
REQUIRED_SETTINGS = SUBMISSION_REQUIRES


def init(
    settings: Settings | None = None,
    services_for: Callable[[Settings], Services] = services_from,
    clock: Callable[[], datetime] = utc_now,
) -> SubmissionApi:
    """What the init phase does: the settings (from the environment unless given), the services
    for them, their secrets read once, and the app."""
    if settings is None:
        settings = load_settings(required=REQUIRED_SETTINGS)
    services = services_for(settings)
    # Under SnapStart the init's memory becomes the snapshot: no secret is read there at all (see
    # enquiries/snapstart.py); each restored copy reads them on its first request that needs them.
    if not snapshot_init():
        read_at_init(stored_secrets(services))
    app = build_app(settings, services, clock)
    # With SnapStart only: the first request's setup, and the hooks a restored snapshot needs.
    prepare_snapshot(settings, stored_secrets(services))
    return app


def handler_for(app: SubmissionApi) -> LambdaHandler:
    # Never the event, whatever POWERTOOLS_LOGGER_LOG_EVENT says: the event holds the enquiry.
    @with_invocation_keys
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        if is_warm_up(event):  # the schedule that keeps a SnapStart version active (api/warm_up.py)
            return answer_warm_up()
        # The HTTP API's request id (Powertools' correlation_paths.API_GATEWAY_HTTP), read directly
        # rather than through a JMESPath query on every request.
        set_correlation_id((event.get("requestContext") or {}).get("requestId"))
        return app.resolve(event, context)

    return lambda_handler


lambda_handler = handler_for(init())
