import pytest

from cfai_magic import errors


@pytest.mark.parametrize("status,code,cls", [
    (400, 5007, errors.ModelNotFound), (400, 5004, errors.InvalidRequest),
    (400, 3003, errors.InvalidRequest), (401, 10000, errors.AuthError),
    (403, 10000, errors.AuthError), (404, 3042, errors.ModelNotFound),
    (404, 7003, errors.AccountNotFound), (408, 3007, errors.RequestTimeout),
    (408, 3008, errors.RequestTimeout), (413, 3006, errors.InvalidRequest),
    (429, 3036, errors.QuotaExceeded), (429, 3040, errors.RateLimited),
    (500, None, errors.ServerError), (503, None, errors.ServerError),
    (401, None, errors.AuthError), (429, None, errors.RateLimited), (418, None, errors.InvalidRequest)])
def test_status_and_code_map_to_the_tree(status, code, cls):
    body = {"success": False, "errors": [{"code": code, "message": "boom"}]} if code else None
    err = errors.from_response(status, body)
    assert type(err) is cls and err.status == status and err.code == code
    assert isinstance(err, errors.APIError) and isinstance(err, errors.CfaiError)
    text = str(err)
    assert "\n" not in text and text.endswith(err.hint) and err.hint


def test_message_is_one_line_even_from_a_multiline_server_message():
    err = errors.from_response(500, {"errors": [{"code": 1, "message": "line one\nline two"}]})
    assert str(err).startswith("line one line two (HTTP 500, code 1)")


def test_every_error_class_says_what_to_do_in_one_line():
    for name in errors.__all__:
        cls = getattr(errors, name)
        if isinstance(cls, type) and issubclass(cls, errors.CfaiError):
            text = str(cls("Something\nfailed"))
            assert "\n" not in text


def test_docstring_draws_the_tree():
    for name in errors.__all__:
        if name not in ("from_response",):
            assert name in errors.__doc__


def test_the_free_allocation_reset_is_said_in_the_users_time(monkeypatch):
    import datetime as dt
    import time

    from cfai_magic.errors import free_reset
    now = dt.datetime(2026, 11, 26, 20, 48, tzinfo=dt.timezone.utc)
    try:
        monkeypatch.setenv("TZ", "Asia/Tokyo")
        time.tzset()
        assert free_reset(now) == "09:00 JST your time, in 3 h 12 min"
        monkeypatch.setenv("TZ", "UTC")
        time.tzset()
        assert free_reset(now) == "in 3 h 12 min"
    finally:
        monkeypatch.undo()
        time.tzset()
