"""Account and extension reads (ringcentral-api.md §2.4) over real HTTP."""

from __future__ import annotations

from callwatch.ids import IdGenerator
from callwatch.store.provisioning import create_account, create_extension

from .conftest import LiveServer
from .helpers import assert_error

EXTENSIONS = "/restapi/v1.0/account/~/extension"


def _other_tenant(server: LiveServer) -> tuple[int, int]:
    ids = IdGenerator()
    other = create_account(
        server.store, ids=ids, name="Other", main_number="+14155550000", sip_domain="x"
    )
    ext = create_extension(
        server.store, ids=ids, account_id=other.id, number="101", first_name="Eve"
    )
    return other.id, ext.id


class TestList:
    def test_records_have_integer_ids_and_contact(self, server: LiveServer) -> None:
        response = server.client().get(EXTENSIONS, headers=server.auth())
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        numbers = [record["extensionNumber"] for record in body["records"]]
        assert numbers == ["101", "102", "108", "109"]
        sam = body["records"][0]
        assert sam["id"] == server.tenant.user("101").extension.id
        assert isinstance(sam["id"], int)
        assert sam["name"] == "Sam Supervisor"
        assert sam["type"] == "User" and sam["status"] == "Enabled"
        assert sam["contact"]["firstName"] == "Sam"
        assert sam["permissions"]["admin"]["enabled"] is True
        account_id = server.tenant.account.id
        assert sam["uri"] == f"{server.url}/restapi/v1.0/account/{account_id}/extension/{sam['id']}"
        assert body["uri"] == f"{server.url}{EXTENSIONS}"

    def test_paging_and_navigation(self, server: LiveServer) -> None:
        client = server.client()
        response = client.get(EXTENSIONS, params={"perPage": 3, "page": 1}, headers=server.auth())
        body = response.json()
        assert [r["extensionNumber"] for r in body["records"]] == ["101", "102", "108"]
        assert body["paging"] == {
            "page": 1,
            "totalPages": 2,
            "perPage": 3,
            "totalElements": 4,
            "pageStart": 0,
            "pageEnd": 2,
        }
        navigation = body["navigation"]
        assert "previousPage" not in navigation
        second = client.get(navigation["nextPage"]["uri"], headers=server.auth()).json()
        assert [r["extensionNumber"] for r in second["records"]] == ["109"]
        assert second["paging"]["pageStart"] == 3
        assert "nextPage" not in second["navigation"]
        assert second["navigation"]["lastPage"]["uri"].endswith("page=2&perPage=3")

    def test_filters(self, server: LiveServer) -> None:
        client = server.client()
        by_number = client.get(
            EXTENSIONS, params={"extensionNumber": "108"}, headers=server.auth()
        ).json()
        assert [r["name"] for r in by_number["records"]] == ["Alice Agent"]
        disabled = client.get(EXTENSIONS, params={"status": "Disabled"}, headers=server.auth())
        assert disabled.json()["records"] == []
        assert disabled.json()["paging"]["totalElements"] == 0

    def test_invalid_filter_value_names_parameter(self, server: LiveServer) -> None:
        response = server.client().get(
            EXTENSIONS, params={"status": "Sleeping"}, headers=server.auth()
        )
        assert assert_error(response, 400, "CMN-101")["parameterName"] == "status"

    def test_invalid_per_page(self, server: LiveServer) -> None:
        response = server.client().get(EXTENSIONS, params={"perPage": 0}, headers=server.auth())
        assert assert_error(response, 400, "CMN-101")["parameterName"] == "perPage"

    def test_numeric_account_id(self, server: LiveServer) -> None:
        path = f"/restapi/v1.0/account/{server.tenant.account.id}/extension"
        response = server.client().get(path, headers=server.auth())
        assert response.status_code == 200
        assert len(response.json()["records"]) == 4


class TestRead:
    def test_tilde_is_the_token_owner(self, server: LiveServer) -> None:
        response = server.client().get(f"{EXTENSIONS}/~", headers=server.auth("108"))
        body = response.json()
        alice = server.tenant.user("108").extension
        assert body["id"] == alice.id
        assert body["extensionNumber"] == "108"
        assert body["account"] == {
            "id": str(alice.account_id),
            "uri": f"{server.url}/restapi/v1.0/account/{alice.account_id}",
        }

    def test_numeric_ids(self, server: LiveServer) -> None:
        bob = server.tenant.user("102").extension
        path = f"/restapi/v1.0/account/{bob.account_id}/extension/{bob.id}"
        response = server.client().get(path, headers=server.auth("101"))
        assert response.json()["name"] == "Bob Agent"

    def test_unknown_extension_is_cmn_102(self, server: LiveServer) -> None:
        response = server.client().get(f"{EXTENSIONS}/12345", headers=server.auth())
        assert assert_error(response, 404, "CMN-102")["parameterName"] == "extensionId"

    def test_non_numeric_extension_id_is_cmn_101(self, server: LiveServer) -> None:
        response = server.client().get(f"{EXTENSIONS}/abc", headers=server.auth())
        assert assert_error(response, 400, "CMN-101")["parameterName"] == "extensionId"

    def test_account_info(self, server: LiveServer) -> None:
        response = server.client().get("/restapi/v1.0/account/~", headers=server.auth())
        body = response.json()
        assert body["id"] == server.tenant.account.id
        assert body["mainNumber"] == "+16505550100"

    def test_public_url_is_used_for_uris(self, start_server: object) -> None:
        server = start_server(public_url="https://cw.example.com/")  # type: ignore[operator]
        body = server.client().get(f"{EXTENSIONS}/~", headers=server.auth()).json()
        assert body["uri"].startswith("https://cw.example.com/restapi/v1.0/account/")


class TestOtherAccounts:
    def test_other_account_is_invisible(self, server: LiveServer) -> None:
        other_account, other_ext = _other_tenant(server)
        client = server.client()
        headers = server.auth()
        for path in (
            f"/restapi/v1.0/account/{other_account}/extension",
            f"/restapi/v1.0/account/{other_account}",
            f"/restapi/v1.0/account/{other_account}/extension/{other_ext}",
            "/restapi/v1.0/account/99999/extension",
        ):
            body = assert_error(client.get(path, headers=headers), 404, "CMN-102")
            assert body["parameterName"] == "accountId"

    def test_other_accounts_extension_via_tilde(self, server: LiveServer) -> None:
        _, other_ext = _other_tenant(server)
        response = server.client().get(f"{EXTENSIONS}/{other_ext}", headers=server.auth())
        assert assert_error(response, 404, "CMN-102")["parameterName"] == "extensionId"
