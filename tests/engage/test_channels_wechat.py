"""WeChat template and subscribe messages against a local server answering like WeChat."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from kequn.engage.channels import (
    ChannelNotConfiguredError,
    ChannelUnavailableError,
    OutgoingMessage,
    get_channel,
)
from tests.engage.peers import WeChatServer


@pytest.fixture
def wechat(settings):
    with WeChatServer() as server:
        settings.KEQUN_WECHAT_API_URL = server.url
        settings.KEQUN_WECHAT_APP_ID = server.app_id
        settings.KEQUN_WECHAT_APP_SECRET = server.app_secret
        settings.KEQUN_WECHAT_RATE = 0
        yield server
        cache.delete(get_channel("wechat").cache_key)


def template(key: str, openid: str, **fields) -> OutgoingMessage:
    return OutgoingMessage(
        key=key,
        to=openid,
        template_code="TPL-ORDER",
        params={"thing1": "您的订单已发货", "time2": "2026-12-03"},
        **fields,
    )


def test_template_messages_share_one_cached_token(wechat):
    channel = get_channel("wechat")
    results = channel.send_batch(
        [
            template("w-1", "openid-1", payload={"url": "https://shop.example/o/1"}),
            template("w-2", "openid-2"),
        ]
    )
    assert [r.status for r in results] == ["sent", "sent"]
    assert results[0].provider_id == "1000"
    assert wechat.tokens_issued == 1
    get_channel("wechat").send_batch([template("w-3", "openid-3")])  # a new channel object
    assert wechat.tokens_issued == 1
    first = wechat.sent[0]
    assert first["path"] == "/cgi-bin/message/template/send"
    assert first["touser"] == "openid-1" and first["template_id"] == "TPL-ORDER"
    assert first["data"] == {
        "thing1": {"value": "您的订单已发货"},
        "time2": {"value": "2026-12-03"},
    }
    assert first["url"] == "https://shop.example/o/1" and first["client_msg_id"] == "w-1"


def test_an_expired_token_is_refreshed_and_the_message_sent_once(wechat):
    channel = get_channel("wechat")
    channel.send_batch([template("t-1", "openid-1")])
    wechat.expire_token()
    [result] = channel.send_batch([template("t-2", "openid-2")])
    assert result.status == "sent"
    assert wechat.tokens_issued == 2
    assert [m["touser"] for m in wechat.sent] == ["openid-1", "openid-2"]


def test_not_following_and_bad_openids_fail_busy_retries(wechat):
    wechat.openid_errcodes.update({"gone": 43004, "bogus": 40003, "busy": -1})
    results = get_channel("wechat").send_batch(
        [
            template("e-1", "gone"),
            template("e-2", "bogus"),
            template("e-3", "busy"),
            template("e-4", "ok"),
        ]
    )
    assert [(r.status, r.hard_bounce) for r in results] == [
        ("failed", False),
        ("failed", True),
        ("retry", False),
        ("sent", False),
    ]
    assert "does not follow" in results[0].error


def test_subscribe_messages_use_one_consent_per_send(wechat):
    wechat.subscriptions["fan"] = 1
    channel = get_channel("wechat")
    message = OutgoingMessage(
        key="s-1",
        to="fan",
        template_code="SUB-TPL",
        params={"thing1": "积分即将到期"},
        payload={"type": "subscribe", "page": "pages/points/index"},
    )
    first, second = channel.send_batch(
        [message, OutgoingMessage(**{**message.__dict__, "key": "s-2"})]
    )
    assert first.status == "sent"
    assert (second.status, second.hard_bounce) == ("failed", False)
    assert "no subscription left" in second.error
    assert wechat.sent[0]["path"] == "/cgi-bin/message/subscribe/bizsend"
    assert wechat.sent[0]["page"] == "pages/points/index"


def test_wrong_secret_is_a_channel_outage_naming_the_setting(wechat, settings):
    settings.KEQUN_WECHAT_APP_SECRET = "wrong"
    channel = get_channel("wechat")
    cache.delete(channel.cache_key)
    with pytest.raises(ChannelUnavailableError, match="KEQUN_WECHAT_APP_SECRET"):
        channel.send_batch([template("x-1", "openid-1")])
    assert wechat.sent == []


def test_unconfigured_names_the_settings(settings):
    settings.KEQUN_WECHAT_APP_ID = ""
    with pytest.raises(ChannelNotConfiguredError, match="KEQUN_WECHAT_APP_ID"):
        get_channel("wechat")
