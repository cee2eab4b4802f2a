"""`port` and `ports` of a proc."""

from __future__ import annotations

import pytest

from lainyaml import PortMapping, PortSpec, Protocol
from tests.lainyaml.support import one_proc, problems


def test_web_port_defaults_to_80_tcp() -> None:
    assert one_proc("web", {}).port == PortSpec(80, Protocol.TCP)


def test_other_types_have_no_default_port() -> None:
    assert one_proc("worker.x", {}).port is None
    assert one_proc("portal.p", {"service_name": "s"}).port is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (8000, PortSpec(8000)),
        ("8000:tcp", PortSpec(8000, Protocol.TCP)),
        ("53:udp", PortSpec(53, Protocol.UDP)),
        ("53/udp", PortSpec(53, Protocol.UDP)),
        ({8080: ["type:tcp"]}, PortSpec(8080)),
        ({53: ["type:udp", "ignored"]}, PortSpec(53, Protocol.UDP)),
        ([9000, "53:udp"], PortSpec(9000)),
        ([{53: ["type:udp"]}], PortSpec(53, Protocol.UDP)),
        (65535, PortSpec(65535)),
    ],
)
def test_port_forms_accepted_by_the_parser(value: object, expected: PortSpec) -> None:
    assert one_proc("worker.x", {"port": value}).port == expected


def test_empty_port_list_falls_back_to_the_default() -> None:
    assert one_proc("web", {"port": []}).port == PortSpec(80)


@pytest.mark.parametrize(
    "value",
    [0, 65536, -1, True, "80", "80:sctp", "http", "80:tcp:x", 1.5, {80: "type:tcp"}, {80: []},
     {"80": ["type:tcp"]}, {80: ["tcp"]}, {80: ["type:tcp"], 81: ["type:tcp"]}],
)  # fmt: skip
def test_port_rejects_other_forms(value: object) -> None:
    (problem,) = problems({"worker.x": {"port": value}})
    assert problem.startswith("procs.x.port: not supported port desc")


def test_every_entry_of_a_port_list_is_checked() -> None:
    assert [p.split(":")[0] for p in problems({"web": {"port": [80, "x", None]}})] == [
        "procs.web.port[1]",
        "procs.web.port[2]",
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("9500:80/tcp", (PortMapping(9500, 80, Protocol.TCP),)),
        ("9501:53/udp", (PortMapping(9501, 53, Protocol.UDP),)),
        ("9502", (PortMapping(9502, 9502),)),
        (9503, (PortMapping(9503, 9503),)),
        ("9504/udp", (PortMapping(9504, 9504, Protocol.UDP),)),
        ({"9500:80": {}, "10000:22/tcp": None}, (PortMapping(9500, 80), PortMapping(10000, 22))),
        ({9600: {"opt": 1}}, (PortMapping(9600, 9600),)),
        (["9500:80", "9501:81/udp"], (PortMapping(9500, 80), PortMapping(9501, 81, Protocol.UDP))),
    ],
)
def test_ports_forms(value: object, expected: tuple[PortMapping, ...]) -> None:
    assert one_proc("worker.x", {"ports": value}).ports == expected


def test_ports_src_must_be_in_stream_router_range() -> None:
    assert problems({"worker.x": {"ports": "9499:80"}}) == [
        "procs.x.ports: src port should between 9500 and 10000"
    ]
    assert problems({"worker.x": {"ports": ["10001:80"]}}) == [
        "procs.x.ports[0]: src port should between 9500 and 10000"
    ]


def test_ports_dst_must_be_a_port_number() -> None:
    assert problems({"worker.x": {"ports": "9500:0"}}) == [
        "procs.x.ports: dst port should between 1 and 65535"
    ]
    assert problems({"worker.x": {"ports": "9500:70000"}}) == [
        "procs.x.ports: dst port should between 1 and 65535"
    ]


def test_ports_src_may_appear_only_once() -> None:
    assert problems({"worker.x": {"ports": ["9500:80", "9500:81"]}}) == [
        "procs.x.ports[1]: cant bind src port to many dst ports '9500:81'"
    ]


@pytest.mark.parametrize(
    "value", ["9500:80/sctp", "9500:80:81", "a:b", "9500:80/tcp/udp", "", " 9500", "9500:+80"]
)
def test_ports_rejects_malformed_descriptions(value: str) -> None:
    (problem,) = problems({"worker.x": {"ports": value}})
    assert problem.startswith("procs.x.ports: not supported ports desc")


def test_ports_rejects_other_types() -> None:
    assert problems({"worker.x": {"ports": True}}) == [
        "procs.x.ports: must be a string, a list or a mapping, not a boolean"
    ]
    assert problems({"worker.x": {"ports": {"9500:80": "tcp"}}}) == [
        "procs.x.ports.9500:80: options must be a mapping, not a string"
    ]
    (problem,) = problems({"worker.x": {"ports": [[9500]]}})
    assert problem.startswith("procs.x.ports[0]: not supported ports desc")
