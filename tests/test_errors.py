import json

import pytest

from kimi_jupyter import errors as E


def body(kind, message):
    return json.dumps({"error": {"type": kind, "message": message}})


@pytest.mark.parametrize("status,kind,message,cls,hint", [
    (401, "invalid_authentication_error", "Invalid Authentication", E.AuthenticationError, "MOONSHOT_API_KEY"),
    (403, "permission_denied_error", "no", E.PermissionDeniedError, "403"),
    (404, "resource_not_found_error", "Not found the model x", E.ModelNotFoundError, "%kimi models"),
    (400, "invalid_request_error", "Invalid request: Your request exceeded model token limit: 262144", E.ContextTooLongError, "--new"),
    (400, "content_filter", "The request was rejected because it was considered high risk", E.ContentFilterError, "refused"),
    (400, "invalid_request_error", "invalid temperature: only 1 is allowed for this model", E.BadRequestError, "temperature"),
    (429, "rate_limit_reached_error", "Your account is rate limited, please try again after 3 seconds", E.RateLimitError, "wait 3 s"),
    (429, "engine_overloaded_error", "overloaded", E.OverloadedError, "overloaded"),
    (429, "exceeded_current_quota_error", "Your account is suspended due to insufficient balance", E.QuotaExceededError, "will not help"),
    (503, "server_error", "busy", E.ServerError, "503"),
])
def test_each_error_maps_to_a_type_that_says_what_to_do(status, kind, message, cls, hint):
    err = E.error_from_response(status, body(kind, message), {}, base_url="https://api.moonshot.cn/v1", model="x")
    assert type(err) is cls
    assert hint in str(err)


def test_rate_limit_wait_from_message_or_retry_after():
    err = E.error_from_response(429, body("rate_limit_reached_error", "try again after 7 seconds"))
    assert err.retry_after == 7 and err.retryable
    err = E.error_from_response(429, body("rate_limit_reached_error", "slow down"), {"retry-after": "2"})
    assert err.retry_after == 2


def test_quota_is_never_retryable():
    assert not E.error_from_response(429, body("exceeded_current_quota_error", "quota")).retryable


def test_401_on_intl_platform_mentions_cn_key():
    err = E.error_from_response(401, body("invalid_authentication_error", "x"), base_url="https://api.moonshot.ai/v1")
    assert "api.moonshot.cn" in str(err)


def test_key_echoed_by_server_is_redacted():
    key = "sk-live-0123456789abcdefghij"
    err = E.error_from_response(400, body("invalid_request_error", f"bad key {key} Bearer {key}"), secret=key)
    assert key not in str(err)


def test_non_json_error_body():
    err = E.error_from_response(502, "<html>Bad Gateway</html>")
    assert isinstance(err, E.ServerError) and "Bad Gateway" in str(err)
