"""``POST /api/contacts``: contact-centre agents' notes of calls and visits (bearer token)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Header, HTTPException
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from connectors.call_notes import ContactNote, NoteInvalidError, note_dedupe_key, parse_note, to_inbound
from connectors.webform import check_idempotency_key
from ingest.intake import IdempotencyConflictError, fingerprint
from ingest.intake_store import dumps
from web.context import WebContext, context, problem
from web.enquiries import API_RESPONSES, ProblemOut

log = logging.getLogger(__name__)

router = APIRouter(tags=["contact centre"])
bearer = HTTPBearer(auto_error=False, description="an agent token from FRONTDOOR_AGENT_TOKENS")


def require_agent(ctx: WebContext = Depends(context),  # noqa: B008
                  credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str | None:  # noqa: B008
    """The agent's name for the presented token (None when the token names no one); 401 otherwise.

    Checked before the body is read, so an unauthenticated caller learns nothing of it."""
    ok, agent = ctx.agents.agent_for(credentials.credentials if credentials else None)
    if not ok:
        raise HTTPException(401, "An agent's bearer token is needed", headers={"WWW-Authenticate": "Bearer"})
    return agent


class NoteReceiptOut(BaseModel):
    reference: str
    thread_reference: str | None = None
    duplicate: bool = False


@router.post("/api/contacts", status_code=202, response_model=NoteReceiptOut,
             responses={**API_RESPONSES, 401: {"model": ProblemOut, "description": "no valid agent token"}},
             summary="Record an agent's note of a call or visit")
async def api_contact(note: ContactNote, ctx: WebContext = Depends(context),  # noqa: B008
                      agent: str | None = Depends(require_agent),  # noqa: B008
                      idempotency_key: str | None = Header(default=None)) -> Response:
    """A note becomes a message on the stream (channel ``phone`` or ``face_to_face``) with a
    reference of its own; ``reference`` links it to an existing enquiry. The dedupe key is
    ``note_id``, else the ``Idempotency-Key`` header, else a hash of the note."""
    try:
        note = parse_note(note.model_dump())
    except NoteInvalidError as exc:
        return problem(422, "The note is not complete: see errors", exc.errors)
    if idempotency_key is not None:
        try:
            idempotency_key = check_idempotency_key(idempotency_key.strip())
        except ValueError as exc:
            return problem(400, str(exc), {"Idempotency-Key": str(exc)})
    dedupe_key = note_dedupe_key(note, idempotency_key)
    try:
        receipt = await run_in_threadpool(
            ctx.intake.submit, dedupe_key, lambda ref: to_inbound(note, ref, dedupe_key, agent=agent),
            fingerprint(dumps(note.model_dump(mode="json"))))
    except IdempotencyConflictError as exc:
        return problem(409, str(exc))
    return JSONResponse({"reference": receipt.reference, "thread_reference": note.reference,
                         "duplicate": receipt.duplicate}, status_code=202)
