"""Delegation chains: signing a link (agent side) and judging a request's chain (pure).

A chain runs root first: a human (with their approver key) or an agent grants an agent some
action patterns until an expiry; that agent may pass on a narrower grant, and so on down to
the agent making the request. Every link only narrows its parent, in scope and in time, so a
chain can never give anyone more than its root holds. Nothing here does I/O: the caller says
which public keys each delegator has (`keys_of`) and what time it is (`at`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import TypeAdapter, ValidationError

from proctor.attestation import UnusableKey, fingerprint, verify_signature
from proctor.canonical import canonical_bytes
from proctor.errors import InputError
from proctor.models import ActionRequest
from proctor.models.delegation import DelegationLink, DelegationView, PrincipalKind
from proctor.signing import AgentKey, sign_bytes

KeysOf = Callable[[DelegationLink], tuple[str, ...]]
"""The public keys (PEM) that may sign a link for its delegator, as of the request's receipt."""
_CHAIN = TypeAdapter(tuple[DelegationLink, ...])


class DelegationError(InputError):
    """A link that cannot be made or a chain file that cannot be read (one line)."""


class ApproverSigner(Protocol):
    """A human's vote key (`proctor.approvals.keys.VoteSigner`): named here by shape only, so
    the agent side never imports the governance side."""

    @property
    def approver(self) -> str | None: ...

    @property
    def private_key(self) -> ed25519.Ed25519PrivateKey: ...

    @property
    def key_id(self) -> str: ...


# --- patterns -----------------------------------------------------------------------------


def covers(parent: str, child: str) -> bool:
    """Whether every action `child` matches is matched by `parent` (`*`: any run of
    characters). Sound: read `child`'s `*` as a letter only a `*` of `parent` can absorb; if
    `parent` matches that word, any filling-in of `child`'s stars is matched too. An action
    name (no `*`) is a pattern matching itself, so this is also plain matching."""
    return _covers(_squeeze(parent), _squeeze(child))


def matches(pattern: str, action: str) -> bool:
    """Whether `action` (a name, no `*`) is one `pattern` allows."""
    return "*" not in action and covers(pattern, action)


def _squeeze(pattern: str) -> str:
    while "**" in pattern:
        pattern = pattern.replace("**", "*")
    return pattern


@lru_cache(maxsize=4096)
def _covers(parent: str, child: str) -> bool:
    """Dynamic programming over (position in parent, position in child): linear memory."""
    reach = [False] * (len(child) + 1)  # reach[j]: parent[:i] matches child[:j]
    reach[0] = True
    for symbol in parent:
        if symbol == "*":
            for j in range(1, len(child) + 1):
                reach[j] = reach[j] or reach[j - 1]
        else:
            reach = [False] + [
                reach[j] and child[j] == symbol and child[j] != "*" for j in range(len(child))
            ]
    return reach[len(child)]


def narrows(parent: Sequence[str], child: Sequence[str]) -> str | None:
    """The first of `child`'s patterns that no pattern of `parent` covers, or None."""
    for pattern in child:
        if not any(covers(wider, pattern) for wider in parent):
            return pattern
    return None


# --- signing (agent side) -------------------------------------------------------------------


def sign_link(
    signer: AgentKey | ApproverSigner,
    *,
    to: str,
    actions: Sequence[str],
    expires_at: datetime,
    issued_at: datetime | None = None,
) -> DelegationLink:
    """A link from `signer` (an agent's key, or a human's approver key) to agent `to`."""
    issued = issued_at or datetime.now(UTC).replace(microsecond=0)
    kind: PrincipalKind
    if isinstance(signer, AgentKey):
        delegator, kind, key_id = signer.agent_id, "agent", fingerprint(signer.public_key_pem)
    elif signer.approver is None:
        raise DelegationError("an approval service's key cannot delegate: use an approver's key")
    else:
        delegator, kind, key_id = signer.approver, "human", signer.key_id
    try:
        link = DelegationLink(
            delegator=delegator,
            delegator_kind=kind,
            delegate=to,
            actions=tuple(actions),
            issued_at=issued,
            expires_at=expires_at,
            key_id=key_id,
        )
    except ValidationError as exc:
        raise DelegationError(_first_error(exc)) from None
    if link.expires_at <= link.issued_at:
        raise DelegationError("the link would expire before it is issued")
    signature = sign_bytes(signer.private_key, canonical_bytes(link.signing_payload()))
    return link.model_copy(update={"signature": base64.b64encode(signature).decode()})


def extend_chain(
    signer: AgentKey | ApproverSigner,
    *,
    to: str,
    actions: Sequence[str],
    expires_in: timedelta,
    parent: Sequence[DelegationLink] = (),
) -> tuple[DelegationLink, ...]:
    """`parent` extended by one link signed by `signer`; an agent extends a chain that ends
    with it, within its parent's actions and expiry (the expiry is cut to the parent's)."""
    now = datetime.now(UTC).replace(microsecond=0)
    expires_at = now + expires_in
    if parent:
        last = parent[-1]
        if not isinstance(signer, AgentKey) or signer.agent_id != last.delegate:
            raise DelegationError(f"the chain ends with agent {last.delegate}: only it extends it")
        wider = narrows(last.actions, actions)
        if wider is not None:
            raise DelegationError(f"{wider!r} is not within the parent's {list(last.actions)}")
        if last.expires_at <= now:
            raise DelegationError(f"the chain expired at {last.expires_at.isoformat()}")
        expires_at = min(expires_at, last.expires_at)
    link = sign_link(signer, to=to, actions=actions, expires_at=expires_at, issued_at=now)
    return (*parent, link)


def dump_chain(chain: Sequence[DelegationLink]) -> str:
    """The chain as a JSON list of links, root first (what `load_chain` reads)."""
    return json.dumps([link.model_dump(mode="json") for link in chain], indent=2) + "\n"


def load_chain(path: str | Path) -> tuple[DelegationLink, ...]:
    """A chain written by `proctor delegate` (or `dump_chain`)."""
    file = Path(path)
    try:
        return _CHAIN.validate_json(file.read_bytes())
    except OSError as exc:
        raise DelegationError(f"{file}: cannot read the chain: {exc.strerror}") from None
    except ValidationError as exc:
        raise DelegationError(f"{file}: not a delegation chain: {_first_error(exc)}") from None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])


# --- judging (governance side, still pure) ------------------------------------------------


def chain_view(request: ActionRequest) -> DelegationView:
    """What policy sees: every principal from the root to the requesting agent."""
    if not request.delegation:
        return DelegationView()
    chain = _principals(request.delegation)
    return DelegationView(chain=chain, depth=len(request.delegation), root=chain[0])


def _principals(links: Sequence[DelegationLink]) -> tuple[str, ...]:
    return (links[0].principal, *(f"agent:{link.delegate}" for link in links))


def chain_refusal(
    request: ActionRequest,
    *,
    keys_of: KeysOf,
    max_depth: int,
    at: datetime,
    clock_skew: timedelta = timedelta(0),
) -> str | None:
    """Why the request's chain does not let it act for its root (None: it does, or it claims
    no one). Shape first, then each link's time, scope and signature, then the action. A link
    may be issued up to `clock_skew` after `at`: the delegator's clock is not the server's, and
    the requester must not pay for the difference."""
    links = request.delegation
    if not links:
        if request.on_behalf_of is not None:
            return f"on_behalf_of {request.on_behalf_of!r} comes with no delegation chain"
        return None
    return (
        _shape_refusal(request, max_depth)
        or _links_refusal(links, keys_of, at, clock_skew)
        or _action_refusal(request)
    )


def _shape_refusal(request: ActionRequest, max_depth: int) -> str | None:
    links = request.delegation
    if len(links) > max_depth:
        return f"the chain has {len(links)} links, more than the maximum of {max_depth}"
    root = links[0].principal
    if request.on_behalf_of is not None and request.on_behalf_of != root:
        return f"on_behalf_of {request.on_behalf_of!r} is not the chain's root {root!r}"
    for number, (parent, link) in enumerate(pairwise(links), start=2):
        if link.delegator_kind != "agent":
            return f"{_name(number, link)}: only the root may be a human"
        if link.delegator != parent.delegate:
            return f"{_name(number, link)}: its delegator is not agent:{parent.delegate}"
    if links[-1].delegate != request.agent_id:
        return f"{_name(len(links), links[-1])}: delegates to another agent than the requester"
    principals = _principals(links)
    if len(set(principals)) != len(principals):
        return "a principal appears twice in the chain (a cycle)"
    return None


def _links_refusal(
    links: Sequence[DelegationLink], keys_of: KeysOf, at: datetime, skew: timedelta
) -> str | None:
    for number, link in enumerate(links, start=1):
        parent = links[number - 2] if number > 1 else None
        why = _time_refusal(link, parent, at, skew) or _scope_refusal(link, parent)
        why = why or _signature_refusal(link, keys_of(link))
        if why is not None:
            return f"{_name(number, link)}: {why}"
    return None


def _time_refusal(
    link: DelegationLink, parent: DelegationLink | None, at: datetime, skew: timedelta
) -> str | None:
    if at + skew < link.issued_at:
        return f"issued at {link.issued_at.isoformat()}, after the request was received"
    if at >= link.expires_at:
        return f"expired at {link.expires_at.isoformat()}"
    if parent is not None and link.expires_at > parent.expires_at:
        return "expires after the link it extends"
    return None


def _scope_refusal(link: DelegationLink, parent: DelegationLink | None) -> str | None:
    if parent is None:
        return None
    wider = narrows(parent.actions, link.actions)
    return None if wider is None else f"{wider!r} is wider than the link it extends allows"


def _signature_refusal(link: DelegationLink, keys: tuple[str, ...]) -> str | None:
    for pem in keys:
        try:
            if fingerprint(pem) != link.key_id:
                continue
        except UnusableKey:
            continue
        if verify_signature(pem, link.signature, link.signing_payload()):
            return None
        return "the signature does not verify"
    return f"not signed by a key of {link.principal}"


def _action_refusal(request: ActionRequest) -> str | None:
    last = request.delegation[-1]
    if any(matches(pattern, request.action) for pattern in last.actions):
        return None
    return f"the chain does not grant {request.action!r} (only {list(last.actions)})"


def _name(number: int, link: DelegationLink) -> str:
    return f"link {number} ({link.principal} → agent:{link.delegate})"
