"""Compare simulator answers with the document's examples: structure, types, time formats."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

__all__ = ["XML_DECLARATION", "assert_xml_like", "json_problems", "xml_problems"]

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8" ?>'
TIME_FORMATS = {
    "space": re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"),
    "iso": re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$"),
}


def time_format(text: str) -> str | None:
    return next((name for name, pattern in TIME_FORMATS.items() if pattern.match(text)), None)


def json_problems(actual: object, example: object, path: str = "$") -> list[str]:
    """List where ``actual`` differs from ``example`` in keys, nesting, types or time format."""
    if isinstance(example, dict):
        if not isinstance(actual, dict):
            return [f"{path}: {type(actual).__name__}, not an object"]
        problems = (
            [f"{path}: keys {sorted(actual)} != {sorted(example)}"]
            if set(actual) != set(example)
            else []
        )
        for key in example.keys() & actual.keys():
            problems += json_problems(actual[key], example[key], f"{path}.{key}")
        return problems
    if isinstance(example, list):
        if not isinstance(actual, list) or not actual:
            return [f"{path}: {actual!r} is not a non-empty array"]
        return [
            p
            for i, item in enumerate(actual)
            for p in json_problems(item, example[0], f"{path}[{i}]")
        ]
    if type(actual) is not type(example):
        return [f"{path}: {type(actual).__name__} {actual!r} != {type(example).__name__}"]
    if isinstance(example, str) and time_format(example) != time_format(str(actual)):
        return [f"{path}: time {actual!r} is not written like {example!r}"]
    return []


def _leaf_problem(element: ET.Element, path: str) -> str | None:
    text = element.text or ""
    kind = element.get("type")
    try:
        if kind == "int":
            int(text)
        elif kind == "float":
            float(text)
        elif kind == "bool" and text not in ("True", "False"):
            return f"{path}: bool text {text!r}"
    except ValueError:
        return f"{path}: {text!r} is not {kind}"
    return None


def xml_problems(actual: ET.Element, example: ET.Element, path: str = "Response") -> list[str]:
    """List where an XML answer differs from the example in tags, type attributes or formats."""
    if actual.tag != example.tag or actual.get("type") != example.get("type"):
        return [
            f"{path}: <{actual.tag} type={actual.get('type')}> != <{example.tag} {example.attrib}>"
        ]
    example_children, actual_children = list(example), list(actual)
    if example_children and all(child.tag == "item" for child in example_children):
        if not actual_children:
            return [f"{path}: no items"]
        return [
            problem
            for index, child in enumerate(actual_children)
            for problem in xml_problems(child, example_children[0], f"{path}/item[{index}]")
        ]
    if [c.tag for c in actual_children] != [c.tag for c in example_children]:
        return [f"{path}: children {[c.tag for c in actual_children]}"]
    if not example_children:
        problem = _leaf_problem(actual, path)
        if problem:
            return [problem]
        if example.get("type") == "str" and time_format(example.text or "") != time_format(
            actual.text or ""
        ):
            return [f"{path}: time {actual.text!r} is not written like {example.text!r}"]
        return []
    return [
        problem
        for got, want in zip(actual_children, example_children, strict=True)
        for problem in xml_problems(got, want, f"{path}/{want.tag}")
    ]


def assert_xml_like(text: str, example: str) -> None:
    assert text.startswith(XML_DECLARATION)
    assert example.startswith(XML_DECLARATION)
    assert xml_problems(ET.fromstring(text), ET.fromstring(example)) == []
