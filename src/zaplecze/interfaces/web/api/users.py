"""/api/users and /api/approvals: staff users (list, create: the TOTP secret is shown once),
role changes as four-eyes requests, and their decision by another person, bound to the
payload's hash (services/four_eyes.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from zaplecze.interfaces.web.api.common import RESPONSES, Listing, Paging, page_of, paging_by
from zaplecze.interfaces.web.auth import Principal, authorize, book_of, required
from zaplecze.interfaces.web.problems import ApiProblem
from zaplecze.kernel.problems import BookError
from zaplecze.services import access, four_eyes, identity
from zaplecze.store.db import read_connection

router = APIRouter(prefix="/api", tags=["users"], responses=RESPONSES)

USER_COLUMNS = ("username", "display_name", "desk", "active")
APPROVAL_COLUMNS = ("request_id", "action", "subject", "maker", "made_at", "status", "checker",
                    "decided_at")
UsersPaging = Annotated[Paging, Depends(paging_by(USER_COLUMNS))]
ApprovalsPaging = Annotated[Paging, Depends(paging_by(APPROVAL_COLUMNS))]

Username = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
Plain = Annotated[str, Field(pattern=r"^[^\x00]*$")]
Role = Literal[access.ROLE_NAMES]  # type: ignore[valid-type]
Hash = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
RequestId = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9]+$")]


class UserOut(BaseModel):
    username: str
    display_name: str
    roles: list[str]
    desk: str
    active: bool


class NewUserIn(BaseModel):
    model_config = {"extra": "forbid"}

    username: Username
    password: Annotated[Plain, Field(min_length=1, max_length=identity.PASSWORD_MAX)]
    roles: Annotated[list[Role], Field(min_length=1, max_length=16)]
    desk: Annotated[Plain, Field(max_length=32, description="'' for every desk")] = ""
    display_name: Annotated[Plain, Field(max_length=200)] = ""


class NewUserOut(UserOut):
    totp_secret: str = Field(description="shown once: enrol it in an authenticator app")
    otpauth_uri: str


class RolesIn(BaseModel):
    model_config = {"extra": "forbid"}

    roles: Annotated[list[Role], Field(min_length=1, max_length=16)]


class ApprovalOut(BaseModel):
    request_id: str
    action: str
    subject: str
    payload: dict[str, Any]
    payload_hash: str
    maker: str
    made_at: str
    status: Literal["pending", "approved", "rejected"]
    checker: str
    decided_at: str


class DecideIn(BaseModel):
    model_config = {"extra": "forbid"}

    payload_hash: Hash


def _user(user: identity.User) -> UserOut:
    return UserOut(username=user.username, display_name=user.display_name,
                   roles=list(user.roles), desk=user.desk, active=user.active)


def _approval(made: four_eyes.Request) -> ApprovalOut:
    return ApprovalOut(request_id=made.request_id, action=made.action, subject=made.subject,
                       payload=made.payload, payload_hash=made.payload_hash, maker=made.maker,
                       made_at=made.made_at, status=made.status,  # type: ignore[arg-type]
                       checker=made.checker, decided_at=made.decided_at)


@router.get("/users", name="api.users.list", response_model=Listing[UserOut])
def list_users(request: Request, page: UsersPaging,
               principal: Annotated[Principal | None, Depends(authorize)]) -> Listing[UserOut]:
    required(principal)
    with read_connection(book_of(request).engine) as connection:
        found = identity.list_users(connection)
    rows = [_user(user).model_dump() for user in found]
    return Listing[UserOut](**page_of(rows, page, "username", USER_COLUMNS))


_FIELD_OF = {"weak_password": "password", "invalid_username": "username",
             "unknown_role": "roles"}


@router.post("/users", name="api.users.create", response_model=NewUserOut, status_code=201)
def create_user(body: NewUserIn, request: Request,
                principal: Annotated[Principal | None, Depends(authorize)]) -> NewUserOut:
    """A new staff user with a new TOTP secret, returned once (with its otpauth URI)."""
    who = required(principal)
    try:
        user = identity.add_user(book_of(request).engine, who.actor, body.username,
                                 body.password, list(body.roles), desk=body.desk,
                                 display_name=body.display_name)
    except BookError as error:
        code, _, detail = str(error).partition(": ")
        if code in _FIELD_OF:
            raise ApiProblem(400, code, detail,
                             [{"field": _FIELD_OF[code], "message": detail}]) from error
        raise
    return NewUserOut(**_user(user).model_dump(), totp_secret=user.totp_secret,
                      otpauth_uri=identity.totp_uri(user))


@router.post("/users/{username}/roles", name="api.users.roles", response_model=ApprovalOut,
             status_code=201)
def request_roles(username: Username, body: RolesIn, request: Request,
                  principal: Annotated[Principal | None, Depends(authorize)]) -> ApprovalOut:
    """Ask for a user's roles to become ``roles``: a four-eyes request that another person
    approves (POST /api/approvals/{request_id}/approve) before it is applied."""
    who = required(principal)
    made = four_eyes.request(book_of(request).engine, who.actor, "user.roles", username,
                             {"username": username, "roles": list(body.roles)})
    return _approval(made)


@router.get("/approvals", name="api.approvals.list", response_model=Listing[ApprovalOut])
def list_approvals(request: Request, page: ApprovalsPaging,
                   principal: Annotated[Principal | None, Depends(authorize)],
                   status: Annotated[Literal["pending", "approved", "rejected"] | None,
                                     Query()] = None) -> Listing[ApprovalOut]:
    """Four-eyes requests, pending and decided, oldest first unless sorted otherwise."""
    required(principal)
    with read_connection(book_of(request).engine) as connection:
        found = four_eyes.requests(connection)
    rows = [_approval(made).model_dump() for made in found
            if status is None or made.status == status]
    return Listing[ApprovalOut](**page_of(rows, page, "made_at", APPROVAL_COLUMNS))


def _decide(request: Request, principal: Principal | None, request_id: str, approve: bool,
            body: DecideIn) -> ApprovalOut:
    who = required(principal)
    return _approval(four_eyes.decide(book_of(request).engine, who.actor, request_id, approve,
                                      body.payload_hash))


@router.post("/approvals/{request_id}/approve", name="api.approvals.approve",
             response_model=ApprovalOut)
def approve(request_id: RequestId, body: DecideIn, request: Request,
            principal: Annotated[Principal | None, Depends(authorize)]) -> ApprovalOut:
    """Approve (and apply) another person's request, naming the payload hash you were shown:
    your own request is refused (403 ``four_eyes_required``), another hash 409."""
    return _decide(request, principal, request_id, True, body)


@router.post("/approvals/{request_id}/reject", name="api.approvals.reject",
             response_model=ApprovalOut)
def reject(request_id: RequestId, body: DecideIn, request: Request,
           principal: Annotated[Principal | None, Depends(authorize)]) -> ApprovalOut:
    return _decide(request, principal, request_id, False, body)
