#!/usr/bin/env python3
"""Drives a running sandbox with the official Alibaba Cloud Python SDK.

Usage: check_python_sdk.py http://127.0.0.1:PORT

The sandbox must accept the test key and ID numbers it does not know, e.g.
`cloudauth-batch sandbox --listen 127.0.0.1:PORT --unknown-ids accept`.
Needs aliyun-python-sdk-core and aliyun-python-sdk-cloudauth==1.3.1 (the last release
with the 2018-09-16 request classes). Exits non-zero on the first failed check.
"""

import base64
import json
import struct
import sys
import uuid
import zlib
from urllib.parse import urlparse

from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcloudauth.request.v20180916.GetStatusRequest import GetStatusRequest
from aliyunsdkcloudauth.request.v20180916.GetVerifyTokenRequest import GetVerifyTokenRequest
from aliyunsdkcloudauth.request.v20180916.SubmitMaterialsRequest import SubmitMaterialsRequest

KEY_ID = "sandbox-test-id"
KEY_SECRET = "sandbox-test-secret"
BIZ = "RPBasic"
WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
CHECKS = "10X98765432"


def id_number(first17):
    """Completes 17 digits with the GB 11643 check character."""
    total = sum(int(d) * w for d, w in zip(first17, WEIGHTS))
    return first17 + CHECKS[total % 11]


def png(width=24, height=20):
    """A small striped RGB PNG, written without any imaging library."""
    rows = b""
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            on = (x // 3 + y // 4) % 2 == 0
            row += bytes([230, 200, 180] if on else [30, 40, 60])
        rows += bytes(row)

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def call(client, request, endpoint):
    request.set_protocol_type("http")
    request.set_endpoint(endpoint)
    return json.loads(client.do_action_with_exception(request))


def check(condition, what):
    if not condition:
        sys.exit("FAILED: " + what)
    print("ok:", what)


def main():
    endpoint = urlparse(sys.argv[1]).netloc
    client = AcsClient(KEY_ID, KEY_SECRET, "cn-hangzhou")
    ticket = "sdk-" + uuid.uuid4().hex

    request = GetVerifyTokenRequest()
    request.set_Biz(BIZ)
    request.set_TicketId(ticket)
    token = call(client, request, endpoint)["Data"]["VerifyToken"]["Token"]
    check(len(token) == 32, "GetVerifyToken returned a token")

    image = base64.b64encode(png()).decode()
    request = SubmitMaterialsRequest()
    request.set_VerifyToken(token)
    request.set_Materials([
        {"MaterialType": "Name", "Value": "张三"},
        {"MaterialType": "IdentificationNumber", "Value": id_number("11010519900307123")},
        {"MaterialType": "FacePic", "Value": "base64://" + image},
    ])
    status = call(client, request, endpoint)["Data"]["VerifyStatus"]
    check(status["StatusCode"] == 1, "SubmitMaterials with a base64 image passed")

    request = GetStatusRequest()
    request.set_Biz(BIZ)
    request.set_TicketId(ticket)
    status = call(client, request, endpoint)["Data"]
    check(status["StatusCode"] == 1, "GetStatus reports StatusCode 1")

    wrong = AcsClient(KEY_ID, "not-the-secret", "cn-hangzhou")
    request = GetStatusRequest()
    request.set_Biz(BIZ)
    request.set_TicketId(ticket)
    try:
        call(wrong, request, endpoint)
        check(False, "a wrong secret is refused")
    except ServerException as error:
        check(error.get_error_code() == "InvalidAccessKeySecret",
              "a wrong secret raises InvalidAccessKeySecret (got %s)" % error.get_error_code())


if __name__ == "__main__":
    main()
