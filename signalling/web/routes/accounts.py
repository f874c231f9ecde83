"""The accounts list for admins: who may sign in, with which roles (read-only; accounts are
made and disabled with ``scenelink users``)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from signalling.web.appkeys import OPERATORS
from signalling.web.models import AccountList
from signalling.web.openapi import documented
from signalling.web.requests import audit

routes = web.RouteTableDef()


@routes.get("/api/accounts")
@documented("The operator accounts, their roles and whether enabled (admins)", response=AccountList)
async def accounts(request: web.Request) -> web.Response:
    book = request.app[OPERATORS].accounts
    found = await asyncio.to_thread(book.all)  # re-reads accounts.json if it changed
    await audit(request, "consultation.accounts", results=len(found))
    return web.json_response(
        {
            "accounts": [
                {
                    "username": a.username,
                    "roles": list(a.roles),
                    "disabled": a.disabled,
                    "created_at": a.created_at or None,
                }
                for a in sorted(found, key=lambda a: a.username)
            ]
        }
    )
