#!/usr/bin/env python3
"""Contract test: IBM's official Key Protect Python client (`keyprotect`, with IBM's IAM
authenticator from ibm-cloud-sdk-core) against the TEST DOUBLE in keyprotect_double.py. If IBM's
own SDK can exchange an API key, count, import, read, list and delete keys against the double, and
gets the errors the real service gives for a bad key, a taken alias and a wrong instance, the double
speaks the API that the real service speaks.

usage: keyprotect_contract.py URL CA_FILE API_KEY INSTANCE   (exit 0 when every step passes)
"""

import base64
import json
import os
import sys

from ibm_cloud_sdk_core import ApiException
from ibm_cloud_sdk_core.authenticators import IAMAuthenticator
from keyprotect import IbmKeyProtectApiV2


def client(url, api_key):
    kp = IbmKeyProtectApiV2(authenticator=IAMAuthenticator(api_key, url=url))
    kp.set_service_url(url)
    return kp


def expect_error(status, code, call):
    try:
        call()
    except ApiException as e:
        assert e.code == status, f"expected HTTP {status}, got {e.code}: {e.message}"
        if code:
            assert code in json.dumps(e.http_response.json()), f"expected {code} in {e.http_response.text}"
        return
    raise AssertionError(f"expected HTTP {status} {code or ''}, the call succeeded")


def main():
    url, ca_file, api_key, instance = sys.argv[1:5]
    os.environ["REQUESTS_CA_BUNDLE"] = ca_file
    kp = client(url, api_key)

    count = kp.get_key_collection_metadata(bluemix_instance=instance)
    assert count.get_status_code() == 200 and count.get_headers()["Key-Total"] == "0", count

    # Import a standard key the way Rook does: name and alias = PVC name, extractable, payload
    # = the 172-character base64 KEK.
    kek = base64.b64encode(os.urandom(128)).decode()
    body = {"metadata": {"collectionType": "application/vnd.ibm.kms.key+json", "collectionTotal": 1},
            "resources": [{"type": "application/vnd.ibm.kms.key+json", "name": "set1-data-0-abcde",
                           "aliases": ["set1-data-0-abcde"], "payload": kek, "extractable": True}]}
    created = kp.create_key(bluemix_instance=instance, key_create_body=json.dumps(body), prefer="return=representation")
    assert created.get_status_code() == 201, created
    key = created.get_result()["resources"][0]
    assert key["name"] == "set1-data-0-abcde" and key["imported"] and key["extractable"], key

    got = kp.get_key(id="set1-data-0-abcde", bluemix_instance=instance).get_result()["resources"][0]
    assert got["payload"] == kek and got["id"] == key["id"], "read back by alias"
    meta = kp.get_key_metadata(id=key["id"], bluemix_instance=instance).get_result()["resources"][0]
    assert "payload" not in meta, "metadata carries no payload"
    listed = kp.get_keys(bluemix_instance=instance).get_result()
    assert listed["metadata"]["collectionTotal"] == 1 and "payload" not in listed["resources"][0], listed

    expect_error(409, "KEY_ALIAS_NOT_UNIQUE_ERR",
                 lambda: kp.create_key(bluemix_instance=instance, key_create_body=json.dumps(body)))
    expect_error(404, "KEY_NOT_FOUND_ERR", lambda: kp.get_key(id="no-such-key", bluemix_instance=instance))
    other = "00000000-0000-0000-0000-000000000000"
    expect_error(401, "UNAUTHORIZED_ERR", lambda: kp.get_keys(bluemix_instance=other))
    expect_error(401, None, lambda: kp.get_key_collection_metadata(bluemix_instance=other))  # HEAD: no body

    deleted = kp.delete_key(id=key["id"], bluemix_instance=instance, prefer="return=representation", force=True)
    assert deleted.get_status_code() == 200, deleted
    assert deleted.get_result()["resources"][0]["state"] == 5
    count = kp.get_key_collection_metadata(bluemix_instance=instance)
    assert count.get_headers()["Key-Total"] == "0", "a destroyed key is not counted"

    expect_error(400, None, lambda: client(url, "wrong-" + api_key).get_keys(bluemix_instance=instance))
    print("contract ok: IBM's keyprotect client works against the double")


if __name__ == "__main__":
    main()
