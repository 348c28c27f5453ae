"""SMS through a generic JSON API and through Alibaba Cloud SMS, against local servers."""

from __future__ import annotations

import json

import pytest

from kequn.engage.channels import (
    ChannelNotConfiguredError,
    ChannelUnavailableError,
    OutgoingMessage,
    get_channel,
)
from kequn.engage.channels.sms import AliyunSMSChannel, GenericSMSChannel, sign_aliyun
from tests.engage.peers import AliyunSMSServer, GenericSMSServer, aliyun_signature, closed_port


@pytest.fixture
def generic(settings):
    with GenericSMSServer() as server:
        settings.KEQUN_SMS_URL = f"{server.url}/send"
        settings.KEQUN_SMS_TOKEN = server.token
        settings.KEQUN_SMS_SIGN_NAME = ""
        settings.KEQUN_SMS_RATE = 0
        yield server


@pytest.fixture
def aliyun(settings):
    with AliyunSMSServer() as server:
        host = server.url.removeprefix("http://")
        settings.KEQUN_SMS_URL = f"aliyun+http://{server.key_id}:{server.secret}@{host}"
        settings.KEQUN_SMS_SIGN_NAME = "客群商城"
        settings.KEQUN_SMS_RATE = 0
        yield server


def sms(key: str, to: str, **fields) -> OutgoingMessage:
    fields.setdefault("text", "【客群商城】张三，您的优惠券 A1B2 将于明天到期")
    return OutgoingMessage(key=key, to=to, **fields)


def test_generic_api_gets_json_with_bearer_token_and_keeps_the_provider_id(generic):
    channel = get_channel("sms")
    assert isinstance(channel, GenericSMSChannel)
    results = channel.send_batch([sms("s-1", "+8613800138000"), sms("s-2", "+8613900139000")])
    assert [(r.status, r.provider_id) for r in results] == [("sent", "sms-1"), ("sent", "sms-2")]
    first = generic.requests[0]
    assert first.headers["authorization"] == "Bearer sms-token"
    assert first.json()["to"] == "+8613800138000" and first.json()["id"] == "s-1"
    assert "优惠券" in first.json()["text"]


def test_generic_api_errors_map_to_failed_retry_and_outage(generic, settings):
    generic.number_answers["+8613800000001"] = (400, {"error": "invalid number +86 138 0000 0001"})
    generic.number_answers["+8613800000002"] = (429, {"error": "slow down"})
    generic.number_answers["+8613800000003"] = (503, {"error": "maintenance"})
    channel = get_channel("sms")
    results = channel.send_batch(
        [
            sms("e-1", "+8613800000001"),
            sms("e-2", "+8613800000002"),
            sms("e-3", "+8613800000003"),
            sms("e-4", "13800138000"),  # not E.164: never sent
            sms("e-5", "+8613800138000"),
        ]
    )
    assert [(r.status, r.hard_bounce) for r in results] == [
        ("failed", False),
        ("retry", False),
        ("retry", False),
        ("failed", True),
        ("sent", False),
    ]
    assert "HTTP 400" in results[0].error and "E.164" in results[3].error
    assert "0001" not in results[0].error and "<number>" in results[0].error
    assert len(generic.requests) == 4
    settings.KEQUN_SMS_TOKEN = "wrong"
    with pytest.raises(ChannelUnavailableError, match="KEQUN_SMS_TOKEN"):
        get_channel("sms").send_batch([sms("e-6", "+8613800138000")])


def test_provider_down_raises_before_and_retries_after_a_first_send(generic, settings):
    channel = get_channel("sms")
    channel.url = f"http://127.0.0.1:{closed_port()}/send"
    with pytest.raises(ChannelUnavailableError, match="cannot reach the SMS provider"):
        channel.send_batch([sms("d-1", "+8613800138000")])


def test_aliyun_signature_matches_the_documented_example():
    # The worked example of Alibaba Cloud's SMS signature documentation (GET request).
    params = {
        "AccessKeyId": "testId",
        "Action": "SendSms",
        "Format": "XML",
        "OutId": "123",
        "PhoneNumbers": "15300000001",
        "RegionId": "cn-hangzhou",
        "SignName": "阿里云短信测试专用",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
        "SignatureVersion": "1.0",
        "TemplateCode": "SMS_71390007",
        "TemplateParam": '{"customer":"test"}',
        "Timestamp": "2017-07-12T02:42:19Z",
        "Version": "2017-05-25",
    }
    assert sign_aliyun(params, "testSecret", "GET") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    assert aliyun_signature(params, "testSecret", "GET") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_aliyun_sends_signed_template_messages(aliyun):
    channel = get_channel("sms")
    assert isinstance(channel, AliyunSMSChannel)
    message = sms(
        "a-1", "+8613800138000", template_code="SMS_123", params={"name": "张三", "code": "A1B2"}
    )
    [result] = channel.send_batch([message])
    assert (result.status, result.provider_id) == ("sent", "biz-1")
    [sent] = aliyun.sent
    assert sent["PhoneNumbers"] == "13800138000" and sent["SignName"] == "客群商城"
    assert sent["TemplateCode"] == "SMS_123" and sent["OutId"] == "a-1"
    assert json.loads(sent["TemplateParam"]) == {"name": "张三", "code": "A1B2"}
    assert sent["AccessKeyId"] == "test-key-id" and "test-secret" not in json.dumps(sent)


def test_aliyun_answer_codes(aliyun, settings):
    aliyun.number_codes["13800000001"] = "isv.MOBILE_NUMBER_ILLEGAL"
    aliyun.number_codes["13800000002"] = "isv.BUSINESS_LIMIT_CONTROL"
    aliyun.number_codes["13800000003"] = "isv.TEMPLATE_MISSING_PARAMETERS"
    channel = get_channel("sms")
    results = channel.send_batch(
        [
            sms(f"c-{n}", f"+861380000000{n}", template_code="SMS_1", params={"x": "1"})
            for n in (1, 2, 3)
        ]
        + [sms("c-4", "+8613800138000")]  # no template code
    )
    assert [(r.status, r.hard_bounce) for r in results] == [
        ("failed", True),
        ("retry", False),
        ("failed", False),
        ("failed", False),
    ]
    assert results[0].error.startswith("sms: isv.MOBILE_NUMBER_ILLEGAL")
    assert "template code" in results[3].error
    host = aliyun.url.removeprefix("http://")
    settings.KEQUN_SMS_URL = f"aliyun+http://test-key-id:wrong-secret@{host}"
    with pytest.raises(
        ChannelUnavailableError, match="SignatureDoesNotMatch: check the key secret"
    ):
        get_channel("sms").send_batch([sms("c-5", "+8613800138000", template_code="SMS_1")])


def test_settings_errors_name_the_setting(settings):
    settings.KEQUN_SMS_URL = ""
    with pytest.raises(ChannelNotConfiguredError, match="set KEQUN_SMS_URL"):
        get_channel("sms")
    settings.KEQUN_SMS_URL = "ftp://sms.example"
    with pytest.raises(ChannelNotConfiguredError, match="must start with https://"):
        get_channel("sms")
    settings.KEQUN_SMS_URL = "https://sms.example/send"
    settings.KEQUN_SMS_TOKEN = ""
    with pytest.raises(ChannelNotConfiguredError, match="KEQUN_SMS_TOKEN"):
        get_channel("sms")
    settings.KEQUN_SMS_URL = "aliyun://id:secret@dysmsapi.aliyuncs.com"
    settings.KEQUN_SMS_SIGN_NAME = ""
    with pytest.raises(ChannelNotConfiguredError, match="KEQUN_SMS_SIGN_NAME"):
        get_channel("sms")
