"""The response example of the smart-MAC device API document, and a structural comparison.

``GETDATA_RAW`` is the seed document's example answer (``/work/shared/seeds/
smartmac-device-api.txt``, "3-phase counter of the extended version"), byte for byte, split
into lines only for reading: note the raw line breaks inside the ``br*`` names.
"""

from __future__ import annotations

import json
from typing import Any

GETDATA_RAW = (
    '{"devid":"1728053249","time":"1530607456","pout":"0","data":{'
    '"V1":{"name":"Voltage 1","unit":"V","value":"220.89"},'
    '"A1":{"name":"Current 1","unit":"A","value":"2.78"},'
    '"W1":{"name":"Active Power 1","unit":"W","value":"586"},'
    '"rW1":{"name":"Rev. Active Power 1","unit":"W","value":"0"},'
    '"Wh1":{"name":"Energy 1","unit":"Wh","value":"33549075"},'
    '"rWh1":{"name":"Rev. Energy 1","unit":"Wh","value":"0"},'
    '"PF1":{"name":"Power Factor 1","unit":"","value":"0.94"},'
    '"br0":{"name":"\n"},'
    '"V2":{"name":"Voltage 2","unit":"V","value":"213.40"},'
    '"A2":{"name":"Current 2","unit":"A","value":"0.34"},'
    '"W2":{"name":"Active Power 2","unit":"W","value":"30"},'
    '"rW2":{"name":"Rev. Active Power 2","unit":"W","value":"0"},'
    '"Wh2":{"name":"Energy 2","unit":"Wh","value":"4831905"},'
    '"rWh2":{"name":"Rev. Energy 2","unit":"Wh","value":"0"},'
    '"PF2":{"name":"Power Factor 2","unit":"","value":"0.42"},'
    '"br1":{"name":"\n"},'
    '"V3":{"name":"Voltage 3","unit":"V","value":"218.59"},'
    '"A3":{"name":"Current 3","unit":"A","value":"0.28"},'
    '"W3":{"name":"Active Power 3","unit":"W","value":"37"},'
    '"rW3":{"name":"Rev. Active Power 3","unit":"W","value":"0"},'
    '"Wh3":{"name":"Energy 3","unit":"Wh","value":"6710742"},'
    '"rWh3":{"name":"Rev. Energy 3","unit":"Wh","value":"0"},'
    '"PF3":{"name":"Power Factor 3","unit":"","value":"0.60"},'
    '"br2":{"name":"\n"},'
    '"T":{"name":"Temperature","unit":"°C","value":"14"}}}'
)


GETDATA = json.loads(GETDATA_RAW, strict=False)
"""The example as the device means it (strict parsers refuse the raw line breaks)."""


def assert_same_device_shape(expected: dict[str, Any], actual: dict[str, Any]) -> None:
    """Assert same keys in the same order at both levels and a string for every value."""
    assert list(actual) == list(expected), f"top-level keys {list(actual)} != {list(expected)}"
    for key, value in actual.items():
        if key != "data":
            assert isinstance(value, str), f"{key}: {value!r} is not a string"
    assert list(actual["data"]) == list(expected["data"])
    for key, entry in actual["data"].items():
        want = expected["data"][key]
        assert list(entry) == list(want), f"data.{key}: keys {list(entry)} != {list(want)}"
        for field, value in entry.items():
            assert isinstance(value, str), f"data.{key}.{field}: {value!r} is not a string"
        if "unit" in want:
            assert (entry["name"], entry["unit"]) == (want["name"], want["unit"])
        else:
            assert entry == want, f"data.{key}: {entry!r} != {want!r}"
