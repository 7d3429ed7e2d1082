"""Call-monitoring groups (ringcentral-api.md §1 rows 10–15, §2.7) over real HTTP, with the
official SDK, and the seed's "which extensions can I monitor" flow."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest
from ringcentral import SDK

from callwatch.ids import IdGenerator
from callwatch.store.provisioning import create_account, create_extension

from .conftest import LiveServer
from .helpers import assert_error

GROUPS = "/restapi/v1.0/account/~/call-monitoring-groups"


def _support_id(server: LiveServer) -> str:
    return server.tenant.monitoring_groups[0].group.id


def _ext_id(server: LiveServer, number: str) -> int:
    return server.tenant.user(number).extension.id


def _members(client: httpx.Client, headers: dict[str, str], group_id: str) -> dict[str, list[str]]:
    response = client.get(f"{GROUPS}/{group_id}/members", headers=headers)
    assert response.status_code == 200, response.text
    return {r["extensionNumber"]: r["permissions"] for r in response.json()["records"]}


def _other_tenant(server: LiveServer) -> tuple[int, int]:
    ids = IdGenerator()
    other = create_account(
        server.store, ids=ids, name="Other", main_number="+14155550000", sip_domain="x"
    )
    ext = create_extension(
        server.store, ids=ids, account_id=other.id, number="101", first_name="Eve"
    )
    return other.id, ext.id


def _assign(
    client: httpx.Client, headers: dict[str, str], group_id: str, body: dict[str, object]
) -> httpx.Response:
    return client.post(f"{GROUPS}/{group_id}/bulk-assign", json=body, headers=headers)


class TestList:
    def test_demo_group_for_any_user(self, server: LiveServer) -> None:
        response = server.client().get(GROUPS, headers=server.auth("109"))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        assert response.headers["X-Rate-Limit-Group"] == "medium"
        body = response.json()
        account_id = server.tenant.account.id
        group_id = _support_id(server)
        assert body["records"] == [
            {
                "uri": f"{server.url}/restapi/v1.0/account/{account_id}/call-monitoring-groups/"
                f"{group_id}",
                "id": group_id,
                "name": "Support",
            }
        ]
        assert body["uri"] == f"{server.url}{GROUPS}"
        assert body["paging"]["totalElements"] == 1 and body["paging"]["perPage"] == 100
        assert "firstPage" in body["navigation"]

    def test_paging(self, server: LiveServer) -> None:
        client, headers = server.client(), server.auth()
        for name in ("Alpha", "Beta", "Gamma", "Delta"):
            assert client.post(GROUPS, json={"name": name}, headers=headers).status_code == 200
        first = client.get(GROUPS, params={"perPage": 2}, headers=headers).json()
        assert [g["name"] for g in first["records"]] == ["Alpha", "Beta"]
        assert first["paging"] == {
            "page": 1,
            "totalPages": 3,
            "perPage": 2,
            "totalElements": 5,
            "pageStart": 0,
            "pageEnd": 1,
        }
        last = client.get(first["navigation"]["lastPage"]["uri"], headers=headers).json()
        assert [g["name"] for g in last["records"]] == ["Support"]
        assert "nextPage" not in last["navigation"]

    def test_member_extension_filter(self, server: LiveServer) -> None:
        client, headers = server.client(), server.auth()
        client.post(GROUPS, json={"name": "Empty"}, headers=headers)

        def names(**params: int | list[str]) -> list[str]:
            response = client.get(GROUPS, params=params, headers=headers)
            assert response.status_code == 200, response.text
            return [g["name"] for g in response.json()["records"]]

        assert names() == ["Empty", "Support"]
        assert names(memberExtensionId=_ext_id(server, "108")) == ["Support"]
        assert names(memberExtensionId=_ext_id(server, "109")) == []
        assert names(memberExtensionId=_ext_id(server, "101"), siteId=["main", "2"]) == ["Support"]
        response = client.get(GROUPS, params={"memberExtensionId": "x1"}, headers=headers)
        assert assert_error(response, 400, "CMN-101")["parameterName"] == "memberExtensionId"


class TestCreateUpdateDelete:
    def test_create_then_rename(self, server: LiveServer) -> None:
        client, headers = server.client(), server.auth()
        created = client.post(GROUPS, json={"name": "Night shift"}, headers=headers)
        assert created.status_code == 200, created.text
        assert created.headers["content-type"] == "application/json"
        group = created.json()
        assert group["name"] == "Night shift" and group["id"].isdigit()
        assert group["uri"].endswith(f"/call-monitoring-groups/{group['id']}")
        assert "site" not in group
        renamed = client.put(
            f"{GROUPS}/{group['id']}", json={"name": "Nights", "site": {"id": 7}}, headers=headers
        )
        assert renamed.status_code == 200, renamed.text
        assert renamed.json() == {**group, "name": "Nights", "site": {"id": "7"}}
        names = [g["name"] for g in client.get(GROUPS, headers=headers).json()["records"]]
        assert names == ["Nights", "Support"]
        assert _members(client, headers, group["id"]) == {}

    @pytest.mark.parametrize("name", ["support", "", "   "])
    def test_bad_or_duplicate_name_is_400(self, server: LiveServer, name: str) -> None:
        client, headers = server.client(), server.auth()
        response = client.post(GROUPS, json={"name": name}, headers=headers)
        assert assert_error(response, 400, "CMN-101")["parameterName"] == "name"
        other = client.post(GROUPS, json={"name": "Other"}, headers=headers).json()
        response = client.put(f"{GROUPS}/{other['id']}", json={"name": name}, headers=headers)
        assert assert_error(response, 400, "CMN-101")["parameterName"] == "name"

    def test_missing_body_or_name(self, server: LiveServer) -> None:
        client, headers = server.client(), server.auth()
        assert_error(client.post(GROUPS, json={}, headers=headers), 400, "CMN-101")
        response = client.post(
            GROUPS, content=b"{", headers={**headers, "Content-Type": "application/json"}
        )
        assert_error(response, 400, "CMN-103")

    def test_delete_removes_group_and_members(self, server: LiveServer) -> None:
        client, headers = server.client(), server.auth()
        group_id = _support_id(server)
        response = client.delete(f"{GROUPS}/{group_id}", headers=headers)
        assert response.status_code == 204 and response.content == b""
        assert client.get(GROUPS, headers=headers).json()["records"] == []
        response = client.get(f"{GROUPS}/{group_id}/members", headers=headers)
        assert assert_error(response, 404, "CMN-102")["parameterName"] == "groupId"
        assert server.store.monitoring.memberships_in_account(server.tenant.account.id) == []
        again = client.delete(f"{GROUPS}/{group_id}", headers=headers)
        assert_error(again, 404, "CMN-102")

    def test_unknown_or_foreign_group_is_404(self, server: LiveServer) -> None:
        client, headers = server.client(), server.auth()
        other_account, _ = _other_tenant(server)
        foreign = server.store.monitoring.create(
            replace(server.tenant.monitoring_groups[0].group, id="77", account_id=other_account)
        )
        for group_id in ("123456", foreign.id):
            for response in (
                client.put(f"{GROUPS}/{group_id}", json={"name": "X"}, headers=headers),
                client.delete(f"{GROUPS}/{group_id}", headers=headers),
                client.get(f"{GROUPS}/{group_id}/members", headers=headers),
                _assign(client, headers, group_id, {}),
            ):
                assert assert_error(response, 404, "CMN-102")["parameterName"] == "groupId"
        assert server.store.monitoring.get("77") == foreign
        response = client.delete(f"{GROUPS}/abc", headers=headers)
        assert assert_error(response, 400, "CMN-101")["parameterName"] == "groupId"


class TestPermissions:
    def test_non_admin_may_read_but_not_change(self, server: LiveServer) -> None:
        client, headers = server.client(), server.auth("108")
        group_id = _support_id(server)
        assert client.get(GROUPS, headers=headers).status_code == 200
        assert _members(client, headers, group_id)["101"] == ["Monitoring"]
        for response in (
            client.post(GROUPS, json={"name": "Mine"}, headers=headers),
            client.put(f"{GROUPS}/{group_id}", json={"name": "Mine"}, headers=headers),
            client.put(f"{GROUPS}/999", json={"name": "Mine"}, headers=headers),
            client.delete(f"{GROUPS}/{group_id}", headers=headers),
            _assign(client, headers, group_id, {"removedExtensions": [{"id": "1"}]}),
        ):
            body = assert_error(response, 403, "CMN-408")
            assert body["permissionName"] == "Groups"
        assert len(server.store.monitoring.list_members(group_id)) == 3

    def test_app_needs_edit_extensions(self, server: LiveServer) -> None:
        app = server.tenant.app
        server.store.apps.update(replace(app, scopes=("ReadAccounts",)))
        client, headers = server.client(), server.auth()
        assert client.get(GROUPS, headers=headers).status_code == 200
        response = client.post(GROUPS, json={"name": "X"}, headers=headers)
        assert assert_error(response, 403, "CMN-401")["permissionName"] == "EditExtensions"
        response = _assign(client, headers, _support_id(server), {})
        assert assert_error(response, 403, "CMN-401")["permissionName"] == "EditExtensions"

    def test_another_account_is_404(self, server: LiveServer) -> None:
        client, headers = server.client(), server.auth()
        other_account, _ = _other_tenant(server)
        base = f"/restapi/v1.0/account/{other_account}/call-monitoring-groups"
        group_id = _support_id(server)
        for response in (
            client.get(base, headers=headers),
            client.post(base, json={"name": "X"}, headers=headers),
            client.put(f"{base}/{group_id}", json={"name": "X"}, headers=headers),
            client.delete(f"{base}/{group_id}", headers=headers),
            client.get(f"{base}/{group_id}/members", headers=headers),
            client.post(f"{base}/{group_id}/bulk-assign", json={}, headers=headers),
        ):
            assert assert_error(response, 404, "CMN-102")["parameterName"] == "accountId"

    def test_explicit_own_account_id(self, server: LiveServer) -> None:
        path = f"/restapi/v1.0/account/{server.tenant.account.id}/call-monitoring-groups"
        response = server.client().get(path, headers=server.auth())
        assert [g["name"] for g in response.json()["records"]] == ["Support"]


class TestMembersAndBulkAssign:
    def test_members_of_demo_group(self, server: LiveServer) -> None:
        response = server.client().get(
            f"{GROUPS}/{_support_id(server)}/members", headers=server.auth()
        )
        assert response.status_code == 200 and response.headers["X-Rate-Limit-Group"] == "medium"
        body = response.json()
        records = body["records"]
        assert [r["extensionNumber"] for r in records] == ["101", "102", "108"]
        sam = records[0]
        assert sam["id"] == str(_ext_id(server, "101"))
        assert sam["permissions"] == ["Monitoring"]
        assert sam["uri"].endswith(f"/extension/{sam['id']}")
        assert body["paging"]["totalElements"] == 3
        paged = server.client().get(
            f"{GROUPS}/{_support_id(server)}/members",
            params={"perPage": 1, "page": 3},
            headers=server.auth(),
        )
        assert [r["extensionNumber"] for r in paged.json()["records"]] == ["108"]

    def test_add_update_remove(self, server: LiveServer) -> None:
        client, headers = server.client(), server.auth()
        group_id = _support_id(server)
        response = _assign(
            client,
            headers,
            group_id,
            {
                "addedExtensions": [{"id": str(_ext_id(server, "109")), "permissions": []}],
                "updatedExtensions": [
                    {"id": _ext_id(server, "108"), "permissions": ["Monitored", "Monitoring"]},
                    {"id": str(_ext_id(server, "102")), "permissions": []},
                ],
                "removedExtensions": [{"id": str(_ext_id(server, "101"))}],
            },
        )
        assert response.status_code == 204, response.text
        assert response.headers["X-Rate-Limit-Group"] == "heavy"
        assert _members(client, headers, group_id) == {"108": ["Monitoring", "Monitored"]}

    @pytest.mark.parametrize(
        ("item", "parameter"),
        [
            ({"id": "99999"}, "updatedExtensions[1].id"),
            ({"id": "other"}, "updatedExtensions[1].id"),
            ({"id": "x1"}, "updatedExtensions[1].id"),
            ({"id": "109", "permissions": ["Listen"]}, "updatedExtensions[1].permissions[0]"),
            ({"id": "108", "permissions": []}, "updatedExtensions[1].id"),
        ],
        ids=["unknown", "other-account", "not-numeric", "bad-permission", "listed-twice"],
    )
    def test_a_bad_item_is_400_and_nothing_changes(
        self, server: LiveServer, item: dict[str, object], parameter: str
    ) -> None:
        client, headers = server.client(), server.auth()
        group_id = _support_id(server)
        _, foreign_ext = _other_tenant(server)
        numbers = {"108": _ext_id(server, "108"), "109": _ext_id(server, "109")}
        numbers["other"] = foreign_ext
        item = {**item, "id": str(numbers.get(str(item["id"]), item["id"]))}
        before = _members(client, headers, group_id)
        response = _assign(
            client,
            headers,
            group_id,
            {
                "addedExtensions": [{"id": str(numbers["109"]), "permissions": ["Monitored"]}],
                "updatedExtensions": [{"id": str(numbers["108"]), "permissions": []}, item],
            },
        )
        body = assert_error(response, 400, "CMN-101")
        assert body["parameterName"] == parameter
        if parameter.endswith(".id") and str(item["id"]).isdigit():
            assert body["parameterValue"] == item["id"]
            assert str(item["id"]) in str(body["message"])
        assert _members(client, headers, group_id) == before

    def test_extension_type_must_be_allowed(self, server: LiveServer) -> None:
        park = create_extension(
            server.store,
            ids=IdGenerator(),
            account_id=server.tenant.account.id,
            number="800",
            first_name="Park",
            type="ParkLocation",
        )
        response = _assign(
            server.client(),
            server.auth(),
            _support_id(server),
            {"addedExtensions": [{"id": str(park.id), "permissions": ["Monitored"]}]},
        )
        body = assert_error(response, 400, "CMN-101")
        assert body["message"] == (
            "Extension of type [ParkLocation] could not be a member of [call monitoring]"
        )


def _platform(server: LiveServer, number: str) -> Any:
    """A logged-in SDK Platform (the SDK has no type hints)."""
    platform = SDK(server.tenant.client_id, server.tenant.client_secret, server.url).platform()
    platform.login(jwt=server.tenant.user(number).jwt)
    return platform


def _monitorable_numbers(platform: Any) -> set[str]:
    """The seed's flow: list groups, read members, keep groups where I hold Monitoring,
    collect their Monitored extension ids; then map ids to extension numbers."""
    me = platform.get("/restapi/v1.0/account/~/extension/~").json_dict()
    agents: set[str] = set()
    groups = platform.get("/restapi/v1.0/account/~/call-monitoring-groups").json_dict()
    for group in groups["records"]:
        path = f"/restapi/v1.0/account/~/call-monitoring-groups/{group['id']}/members"
        members = platform.get(path).json_dict()["records"]
        mine = [m for m in members if m["id"] == str(me["id"])]
        if any("Monitoring" in m["permissions"] for m in mine):
            agents |= {m["id"] for m in members if "Monitored" in m["permissions"]}
    numbers = {}
    for ext in platform.get("/restapi/v1.0/account/~/extension").json_dict()["records"]:
        numbers[str(ext["id"])] = ext["extensionNumber"]
    return {numbers[agent] for agent in agents}


class TestSdk:
    def test_sdk_reads_groups_and_members(self, server: LiveServer) -> None:
        platform = _platform(server, "101")
        groups = platform.get("/restapi/v1.0/account/~/call-monitoring-groups").json_dict()
        assert [g["name"] for g in groups["records"]] == ["Support"]
        group_id = groups["records"][0]["id"]
        members = platform.get(
            f"/restapi/v1.0/account/~/call-monitoring-groups/{group_id}/members"
        ).json_dict()
        ids = {m["id"] for m in members["records"]}
        assert ids == {str(_ext_id(server, n)) for n in ("101", "102", "108")}

    def test_seed_flow_supervisor(self, server: LiveServer) -> None:
        platform = _platform(server, "101")
        assert _monitorable_numbers(platform) == {"108", "102"}

    def test_seed_flow_user_without_monitoring_rights(self, server: LiveServer) -> None:
        assert _monitorable_numbers(_platform(server, "109")) == set()

    def test_sdk_bulk_assign_changes_the_answer(self, server: LiveServer) -> None:
        platform = _platform(server, "101")
        group_id = _support_id(server)
        platform.post(
            f"/restapi/v1.0/account/~/call-monitoring-groups/{group_id}/bulk-assign",
            {
                "addedExtensions": [
                    {"id": str(_ext_id(server, "109")), "permissions": ["Monitored"]}
                ]
            },
        )
        assert _monitorable_numbers(platform) == {"108", "102", "109"}
