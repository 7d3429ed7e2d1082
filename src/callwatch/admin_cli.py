"""``callwatch admin …``: create accounts, extensions, devices, apps and trunks in the store.

Each command opens the store under ``--data-dir``, calls one provisioning function, prints the
result as JSON (secrets included: this is the only time some of them are shown) and exits.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from callwatch.config import Settings
from callwatch.ids import IdGenerator
from callwatch.store.errors import StoreError
from callwatch.store.provisioning import (
    create_account,
    create_app,
    create_device,
    create_extension,
    create_trunk,
    issue_jwt_credential,
)
from callwatch.store.repo import Store
from callwatch.store.sqlite import SqliteStore

admin = typer.Typer(
    help="Provision accounts, extensions, devices, apps and trunks.", no_args_is_help=True
)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="where the database lives")]
AccountId = Annotated[int, typer.Option("--account-id", help="the account's numeric id")]


@contextmanager
def _store(data_dir: Path | None) -> Iterator[Store]:
    settings = Settings() if data_dir is None else Settings(data_dir=data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = SqliteStore(settings.db_path)
    try:
        yield store
    except StoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        store.close()


def _print(data: dict[str, object]) -> None:
    typer.echo(json.dumps(data, indent=2))


@admin.command("create-account")
def create_account_cmd(
    name: Annotated[str, typer.Option(help="company name")],
    main_number: Annotated[str, typer.Option(help="main number in E.164, e.g. +16505550100")],
    sip_domain: Annotated[str, typer.Option(help="SIP domain / digest realm")] = (
        "sip.callwatch.local"
    ),
    data_dir: DataDir = None,
) -> None:
    """Create an account."""
    with _store(data_dir) as store:
        account = create_account(
            store, ids=IdGenerator(), name=name, main_number=main_number, sip_domain=sip_domain
        )
        _print(
            {
                "id": account.id,
                "name": account.name,
                "main_number": account.main_number,
                "sip_domain": account.sip_domain,
            }
        )


@admin.command("create-extension")
def create_extension_cmd(
    account_id: AccountId,
    number: Annotated[str, typer.Option(help="short extension number, e.g. 103")],
    first_name: Annotated[str, typer.Option()],
    last_name: Annotated[str, typer.Option()] = "",
    email: Annotated[str | None, typer.Option()] = None,
    password: Annotated[str | None, typer.Option(help="for the password grant")] = None,
    admin_role: Annotated[bool, typer.Option("--admin", help="account administrator")] = False,
    jwt: Annotated[bool, typer.Option(help="also issue a JWT credential")] = True,
    data_dir: DataDir = None,
) -> None:
    """Create an extension (a user), optionally with a password and a JWT credential."""
    ids = IdGenerator()
    with _store(data_dir) as store:
        ext = create_extension(
            store,
            ids=ids,
            account_id=account_id,
            number=number,
            first_name=first_name,
            last_name=last_name,
            email=email,
            password=password,
            is_admin=admin_role,
        )
        token = issue_jwt_credential(store, ids=ids, extension=ext) if jwt else None
        _print({"id": ext.id, "extension_number": ext.number, "name": ext.name, "jwt": token})


@admin.command("create-device")
def create_device_cmd(
    extension_id: Annotated[int, typer.Option(help="the owning extension's id")],
    device_type: Annotated[
        str, typer.Option("--type", help="SoftPhone, OtherPhone, HardPhone…")
    ] = ("OtherPhone"),
    name: Annotated[str, typer.Option()] = "Existing Phone",
    data_dir: DataDir = None,
) -> None:
    """Create a device with generated SIP credentials."""
    with _store(data_dir) as store:
        extension = store.extensions.get(extension_id)
        if extension is None:
            typer.echo(f"error: extension {extension_id} does not exist", err=True)
            raise typer.Exit(2)
        device = create_device(
            store, ids=IdGenerator(), extension=extension, type=device_type, name=name
        )
        _print(
            {
                "id": device.id,
                "type": device.type,
                "name": device.name,
                "sip_username": device.sip_username,
                "sip_password": device.sip_password,
                "authorization_id": device.authorization_id,
            }
        )


@admin.command("create-app")
def create_app_cmd(
    name: Annotated[str, typer.Option()],
    account_id: Annotated[int | None, typer.Option(help="bind to one account")] = None,
    data_dir: DataDir = None,
) -> None:
    """Create an OAuth app; prints its client id and secret."""
    with _store(data_dir) as store:
        created = create_app(store, ids=IdGenerator(), name=name, account_id=account_id)
        _print(
            {
                "client_id": created.app.client_id,
                "client_secret": created.client_secret,
                "name": created.app.name,
                "scopes": list(created.app.scopes),
            }
        )


@admin.command("create-trunk")
def create_trunk_cmd(
    account_id: AccountId,
    name: Annotated[str, typer.Option()],
    number: Annotated[str, typer.Option(help="the trunk's number in E.164")],
    source: Annotated[list[str], typer.Option(help="source IP whose calls skip digest auth")],
    data_dir: DataDir = None,
) -> None:
    """Create a trunk through which calls from the given addresses come in."""
    with _store(data_dir) as store:
        trunk = create_trunk(
            store,
            ids=IdGenerator(),
            account_id=account_id,
            name=name,
            source_addresses=source,
            number=number,
        )
        _print(
            {
                "id": trunk.id,
                "name": trunk.name,
                "number": trunk.number,
                "source_addresses": list(trunk.source_addresses),
            }
        )
