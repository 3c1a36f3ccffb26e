"""The response examples of the IAMMETER cloud API document, and a structural comparison.

Each example is the seed document's JSON (``/work/shared/seeds/iammeter-cloud-api.txt``) with
its ``//`` comments removed and its whitespace tidied; nothing else is changed.
"""

from __future__ import annotations

import json
import re
from typing import Any

VENDOR_TIME = re.compile(
    r"^\d{4}/(?:[1-9]|1[0-2])/(?:[1-9]|[12]\d|3[01]) (?:\d|1\d|2[0-3]):[0-5]\d:[0-5]\d$"
)
"""``YYYY/M/D H:MM:SS`` without zero padding of month, day and hour."""
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TIME_FORMATS = (VENDOR_TIME, ISO_DATE)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "list" if isinstance(value, list) else "object"


def assert_same_shape(
    expected: Any, actual: Any, where: str = "$", collections: frozenset[str] = frozenset()
) -> None:
    """Assert keys (in order), nesting, value kinds, row lengths and time formats agree.

    A list under a key named in ``collections`` may have any non-zero length; each of its
    items must have the shape of the example's first item.
    """
    assert _kind(actual) == _kind(expected), f"{where}: {actual!r} is not like {expected!r}"
    if isinstance(expected, dict):
        assert list(actual) == list(expected), f"{where}: keys {list(actual)} != {list(expected)}"
        for key, value in expected.items():
            path = f"{where}.{key}"
            if key in collections and isinstance(value, list) and value:
                assert actual[key], f"{path}: empty where the example has items"
                for index, item in enumerate(actual[key]):
                    assert_same_shape(value[0], item, f"{path}[{index}]", collections)
            else:
                assert_same_shape(value, actual[key], path, collections)
    elif isinstance(expected, list):
        assert len(actual) == len(expected), f"{where}: {len(actual)} items, not {len(expected)}"
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            assert_same_shape(want, got, f"{where}[{index}]", collections)
    elif isinstance(expected, str):
        for pattern in TIME_FORMATS:
            if pattern.match(expected):
                assert pattern.match(actual), f"{where}: {actual!r} unlike {expected!r}"


def _seed(text: str) -> Any:
    return json.loads(text)


LOGIN = _seed(
    """
{
    "data": {
        "id": 2025,
        "token": "349dfxxxxxxac5169",
        "refreshToken": "8adf75e5da10424985f3b83855133982"
    },
    "successful": true,
    "message": null
}
"""
)

METERDATA_1P = _seed(
    """
{
    "data": {
        "values": [
            [230.22, 1.3, 119.0, 1766.59, 0.0]
        ],
        "localTime": "2020/8/28 15:27:33",
        "gmtTime": "2020/8/28 5:27:33"
    },
    "successful": true,
    "message": null
}
"""
)

METERDATA2_1P = _seed(
    """
{
    "data": {
        "values": [
            [233.41, 0.718, 111, 0.66, 5724.85, 0]
        ],
        "localTime": "2023/11/21 14:30:22",
        "gmtTime": "2023/11/21 6:30:22"
    },
    "successful": true,
    "message": null
}
"""
)

METERDATA_3P = _seed(
    """
{
    "data": {
        "values": [
            [242.6, 1.0, 216.0, 32354.6, 0.0],
            [242.6, 1.0, 1986.0, 30536.41, 17704.72],
            [0.0, 0.0, 0.0, 0.0, 0.0]
        ],
        "localTime": "2020/8/28 15:30:48",
        "gmtTime": "2020/8/28 5:30:48"
    },
    "successful": true,
    "message": null
}
"""
)

METERDATA2_3P = _seed(
    """
{
    "data": {
        "values": [
            [233.8, 0.03, 4, 0.57, 222.53, 0],
            [5, 0, 0, 0, 0, 0],
            [3.1, 0, 0, 0, 0, 0]
        ],
        "localTime": "2023/11/21 14:39:36",
        "gmtTime": "2023/11/21 6:39:36"
    },
    "successful": true,
    "message": null
}
"""
)

METERDATALIST_1P = _seed(
    """
{
    "data": [
        [227.73, 1.45, 172, 13121.56, 0, "2023/9/12 0:00:34", "2023/9/11 14:00:34"],
        [229.43, 1.45, 172, 13121.56, 0, "2023/9/12 0:01:33", "2023/9/11 14:01:33"]
    ],
    "successful": true,
    "message": null
}
"""
)

METERDATALIST_3P = _seed(
    """
{
    "data": [
        [230, 0, 0, 468.41, 0, 230, 0, 0, 236.58, 290.77, 230, 0, 0, 258.62, 0,
         "2023/9/12 0:00:15", "2023/9/11 16:00:15"],
        [230, 0, 0, 468.41, 0, 230, 0, 0, 236.58, 290.77, 230, 0, 0, 258.62, 0,
         "2023/9/12 0:02:08", "2023/9/11 16:02:08"]
    ],
    "successful": true,
    "message": null
}
"""
)

METERDATALIST2_3P = _seed(
    """
{
    "data": [
        {
            "rtcTime": "2023/9/1 0:00:22",
            "gmtTime": "2023/8/31 16:00:22",
            "values": [
                [235.2, 0.03, 4, 0.57, 210.21, 0],
                [5.5, 0, 0, 0, 0, 0],
                [3.3, 0, 0, 0, 0, 0]
            ]
        },
        {
            "rtcTime": "2023/9/1 8:00:49",
            "gmtTime": "2023/9/1 0:00:49",
            "values": [
                [233.4, 0.03, 4, 0.57, 210.24, 0],
                [5.4, 0, 0, 0, 0, 0],
                [3.3, 0, 0, 0, 0, 0]
            ]
        },
        {
            "rtcTime": "2023/9/1 16:00:24",
            "gmtTime": "2023/9/1 8:00:24",
            "values": [
                [235.6, 0.03, 4, 0.57, 210.27, 0],
                [5.5, 0, 0, 0, 0, 0],
                [3.4, 0, 0, 0, 0, 0]
            ]
        }
    ],
    "successful": true,
    "message": null
}
"""
)

POWER_ANALYSIS = _seed(
    """
{
    "data": {
        "startTime": "2023-09-01",
        "endTime": "2023-09-07",
        "average": 862.6,
        "averageDaytime": 836.9,
        "minimum": 259.0,
        "maximum": 3999.0
    },
    "successful": true,
    "message": null
}
"""
)

OFFLINE_ANALYSIS = _seed(
    """
{
    "data": {
        "startTime": "2023-09-05",
        "endTime": "2023-09-11",
        "offlineCount": 906,
        "totalCount": 10080,
        "list": [
            {
                "startTime": "2023/9/5 0:00:00",
                "endTime": "2023/9/5 15:06:14",
                "duration": 906
            }
        ]
    },
    "successful": true,
    "message": null
}
"""
)

METERSDATA = _seed(
    """
{
    "data": [
        {
            "sn": "DA2BED94",
            "values": [223.71, 1.74, 225, 14761.03, 0],
            "gmtTime": "2024/2/22 3:46:20"
        },
        {
            "sn": "B384789C",
            "values": [
                [248.9, 13.9, 3356, 21228, 0, null, null],
                [248.9, 13.9, -2747, 8988.48, 18489.44, null, null],
                [null, null, null, null, null, null, null],
                [248.9, 13.9, -2747, 8988.48, 18489.44, null, null]
            ],
            "gmtTime": "2024/2/22 3:45:15"
        },
        {
            "sn": "674B1E5D",
            "values": [
                [220.4, 1.86, 377, 5345.985, 20.565],
                [220.4, 1.86, 377, 5367.715, 0.033],
                [220.5, 1.86, 377, 5369.532, 0.033]
            ],
            "gmtTime": "2024/2/22 3:45:50"
        },
        {
            "sn": "59C9AB8D",
            "values": [
                [245.3, 6.5, 1604, 46055.7, 0, null, null],
                [245.3, 6.5, -910, 15726.73, 8956.56, null, null],
                [null, null, null, null, null, null, null],
                [245.3, 6.5, -910, 15726.73, 8956.56, null, null]
            ],
            "gmtTime": "2024/2/22 3:45:15"
        },
        {
            "sn": "3FE34ABE",
            "values": [
                [230, 15.9, 3650.1, 2704.35, 0, 49.99, 0.94],
                [230, -11.5, -2650.1, 1411.31, 1722.35, 49.99, 0.94],
                [230, 4.3, 1000, 1946.03, 0, 49.99, 0.94]
            ],
            "gmtTime": "2024/2/22 3:46:01"
        }
    ],
    "successful": true,
    "message": null
}
"""
)

ENERGYHISTORY_1P_DAY = _seed(
    """
{
    "data": [
        {
            "time": "2024/5/5 0:00:00",
            "yield": 0,
            "fromGrid": 9.62,
            "toGrid": 0,
            "specialLoad": 0,
            "selfUse": 0
        },
        {
            "time": "2024/5/6 0:00:00",
            "yield": 0,
            "fromGrid": 9.16,
            "toGrid": 0,
            "specialLoad": 0,
            "selfUse": 0
        }
    ],
    "successful": true,
    "message": null
}
"""
)

ENERGYHISTORY_3P_DAY = _seed(
    """
{
    "data": [
        {
            "time": "2024/5/5 0:00:00",
            "yield": 0,
            "fromGrid": 0,
            "toGrid": 0,
            "specialLoad": 0,
            "selfUse": 0
        },
        {
            "time": "2024/5/6 0:00:00",
            "yield": 0.1,
            "fromGrid": 0.22,
            "toGrid": 7.15,
            "specialLoad": 0,
            "selfUse": 0
        }
    ],
    "successful": true,
    "message": null
}
"""
)

# The seed shows 24 alike rows (0:00 to 23:00); the first three are kept here.
ENERGYHISTORY_3P_HOUR = _seed(
    """
{
    "data": [
        {
            "time": "2024/5/5 0:00:00",
            "yield": 0,
            "fromGrid": 0,
            "toGrid": 0,
            "specialLoad": 0,
            "selfUse": 0
        },
        {
            "time": "2024/5/5 1:00:00",
            "yield": 0,
            "fromGrid": 0,
            "toGrid": 0,
            "specialLoad": 0,
            "selfUse": 0
        },
        {
            "time": "2024/5/5 2:00:00",
            "yield": 0,
            "fromGrid": 0,
            "toGrid": 0,
            "specialLoad": 0,
            "selfUse": 0
        }
    ],
    "successful": true,
    "message": null
}
"""
)
