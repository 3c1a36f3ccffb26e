# ruff: noqa: E501  (the examples are copied verbatim, one line each, from the seed document)
"""Every response example of the Intellimeter API document (seeds/intellimeter-api.txt), verbatim.

Each entry: (path, method, JSON example, XML example). The document's own typos (a stray
quote after some e-mail addresses) are kept: the tests compare structure, not values.
"""

EXAMPLES: tuple[tuple[str, str, str, str], ...] = (
    (
        "/session",
        "GET",
        '{"uuid": 1, "project": 1, "username": "test", "email": "test@example.com", "joined": "2019-10-29 16:07:17", "project_name": "myProject"}',
        '<?xml version="1.0" encoding="UTF-8" ?><Response><uuid type="int">1</uuid><project type="int">1</project><username type="str">test</username><email type="str">test@example.com"</email><joined type="str">2019-10-29 16:07:17</joined><xml type="bool">True</xml><project_name type="str">myProject</project_name></Response>',
    ),
    (
        "/session",
        "PUT",
        '{"uuid": 1}',
        '<?xml version="1.0" encoding="UTF-8" ?><Response><uuid type="int">1</uuid></Response>',
    ),
    (
        "/session",
        "DELETE",
        "{}",
        '<?xml version="1.0" encoding="UTF-8" ?><Response></Response>',
    ),
    (
        "/key",
        "GET",
        '{"key": "f27a4f7186-d4a6635fe7-992d888955-284e0b037c"}',
        '<?xml version="1.0" encoding="UTF-8" ?><Response><key type="str">5a683c7dd6-c73b2a4313-f0fb321137-9123b7cec0</key></Response>',
    ),
    (
        "/key",
        "POST",
        '{"key": "f27a4f7186-d4a6635fe7-992d888955-284e0b037c"}',
        '<?xml version="1.0" encoding="UTF-8" ?><Response><key type="str">5a683c7dd6-c73b2a4313-f0fb321137-9123b7cec0</key></Response>',
    ),
    (
        "/data",
        "GET",
        '[{"MeterParam": "meter1", "TimeStamping": "2019-10-30 13:15:00", "value": 28540.24}, {"MeterParam": "meter2", "TimeStamping": "2019-10-30 13:15:00", "value": 35757.359}]',
        '<?xml version="1.0" encoding="UTF-8" ?><Response><item type="dict"><MeterParam type="str">meter1</MeterParam><TimeStamping type="str">2019-10-30T13:15:00</TimeStamping><value type="float">28540.24</value></item><item type="dict"><MeterParam type="str">meter2</MeterParam><TimeStamping type="str">2019-10-30T13:15:00</TimeStamping><value type="float">35757.359</value></item></Response>',
    ),
    (
        "/interval",
        "GET",
        '[{"MeterParam": "meter1", "TimeStamping": "2019-10-30 14:10:00", "value": 0.5}, {"MeterParam": "meter2", "TimeStamping": "2019-10-30 14:10:00", "value": 0.08}]',
        '<?xml version="1.0" encoding="UTF-8" ?><Response><item type="dict"><MeterParam type="str">meter1</MeterParam><TimeStamping type="str">2019-10-30T14:10:00</TimeStamping><value type="float">0.5</value></item><item type="dict"><MeterParam type="str">meter2</MeterParam><TimeStamping type="str">2019-10-30T14:10:00</TimeStamping><value type="float">0.08</value></item></Response>',
    ),
    (
        "/user",
        "GET",
        '[{"uuid": 1, "username": "test", "email": "test@example.com", "joined": "2019-10-29 16:07:17"}, {"uuid": 2, "username": "test2", "email": "test2@example.com", "joined": "2019-10-31 14:45:12"}]',
        '<?xml version="1.0" encoding="UTF-8" ?><Response><item type="dict"><uuid type="int">1</uuid><username type="str">test</username><email type="str">test@example.com</email><joined type="str">2019-10-29T16:07:17</joined></item><item type="dict"><uuid type="int">2</uuid><username type="str">test2</username><email type="str">test2@example.com</email><joined type="str">2019-10-31T14:45:12</joined></item></Response>',
    ),
    (
        "/user",
        "POST",
        '{"uuid": 1, "project": 1, "username": "test", "email": "test@example.com", "joined": "2019-10-29 16:07:17", "project_name": "myProject"}',
        '<?xml version="1.0" encoding="UTF-8" ?><Response><uuid type="int">1</uuid><project type="int">1</project><username type="str">test</username><email type="str">test@example.com"</email><joined type="str">2019-10-29 16:07:17</joined><xml type="bool">True</xml><project_name type="str">myProject</project_name></Response>',
    ),
    (
        "/user",
        "PUT",
        '{"uuid": 1, "project": 1, "username": "test", "email": "test@example.com", "joined": "2019-10-29 16:07:17", "project_name": "myProject"}',
        '<?xml version="1.0" encoding="UTF-8" ?><Response><uuid type="int">1</uuid><project type="int">1</project><username type="str">test</username><email type="str">test@example.com"</email><joined type="str">2019-10-29 16:07:17</joined><xml type="bool">True</xml><project_name type="str">myProject</project_name></Response>',
    ),
    (
        "/user",
        "DELETE",
        "{}",
        '<?xml version="1.0" encoding="UTF-8" ?><Response></Response>',
    ),
    (
        "/point",
        "GET",
        '{"id": 1, "MeterId": "meter1", "ModbusId": 1, "Port": "USB0", "NoPhases": "3", "MeterType": "I-45/MFX/636", "ModbusMap": "Priority.ici", "SaveEvery": 5, "startAddress": 1100}',
        '<?xml version="1.0" encoding="UTF-8" ?><Response><id type="int">1</id><MeterId type="str">meter1</MeterId><ModbusId type="int">1</ModbusId><Port type="str">USB0</Port><NoPhases type="str">3</NoPhases><MeterType type="str">I-45/MFX/636</MeterType><ModbusMap type="str">Priority.ici</ModbusMap><SaveEvery type="int">5</SaveEvery><startAddress type="int">1100</startAddress></Response>',
    ),
    (
        "/point",
        "POST",
        '{"id": 1, "MeterId": "meter1", "ModbusId": 1, "Port": "USB0", "NoPhases": "3", "MeterType": "I-45/MFX/636", "ModbusMap": "Priority.ici", "SaveEvery": 5, "startAddress": 1100}',
        '<?xml version="1.0" encoding="UTF-8" ?><Response><id type="int">1</id><MeterId type="str">meter1</MeterId><ModbusId type="int">1</ModbusId><Port type="str">USB0</Port><NoPhases type="str">3</NoPhases><MeterType type="str">I-45/MFX/636</MeterType><ModbusMap type="str">Priority.ici</ModbusMap><SaveEvery type="int">5</SaveEvery><startAddress type="int">1100</startAddress></Response>',
    ),
)
