"""Off-chain pre-validation of an intent before it is signed: the rules the Verifier would panic
on, checked here so that a client learns every problem at once, with where and why.

The request is ``{"type": "dip4", "messages": [message, ...]}`` (the NEP-413 message JSON of each
payload to sign; more than one is a settlement, whose token_diffs must balance per token) or
``{"type": "workshop", "intent": {...}}`` (the workshop Verifier's intent). Rules live in the
pydantic models, so the OpenAPI document shows the same shapes; each broken rule is one
``{path, code, message}``. Nothing here touches the store.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, ValidationInfo
from pydantic_core import PydanticCustomError

from indexer.api.models import Issue, ValidationResult
from indexer.config import account_problem

U128_MAX = 2**128 - 1
I128_MIN, I128_MAX = -(2**127), 2**127 - 1
_DECIMAL = re.compile(r"-?[0-9]{1,40}")
_PUBLIC_KEY = re.compile(r"(ed25519|secp256k1|p256):[1-9A-HJ-NP-Za-km-z]{32,100}")


def _fail(code: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(code, message)


def _account(v: str) -> str:
    problem = account_problem(v)
    if problem:
        raise _fail("account_id", f"{v!r} is not a NEAR account id: {problem}")
    return v


def _token_id(v: str) -> str:
    """nep141:ACCOUNT, nep245:ACCOUNT:ID or nep171:ACCOUNT:ID."""
    standard, _, rest = v.partition(":")
    if standard == "nep141":
        account, sub = rest, None
    elif standard in ("nep245", "nep171"):
        account, _, sub = rest.partition(":")
        if not sub:
            raise _fail("token_id", f"{v!r}: a {standard} token id is {standard}:CONTRACT:TOKEN_ID")
    else:
        raise _fail("token_id", f"{v!r} is not a token id: use nep141:CONTRACT, nep245:CONTRACT:ID or "
                                "nep171:CONTRACT:ID")
    problem = account_problem(account)
    if problem:
        raise _fail("token_id", f"{v!r}: its contract {account!r} is not a NEAR account id: {problem}")
    return v


def _integer(v: str) -> int:
    if not _DECIMAL.fullmatch(v):
        raise _fail("amount_format", f"{v!r} is not a decimal integer string")
    return int(v)


def _positive_u128(v: str) -> str:
    n = _integer(v)
    if n <= 0:
        raise _fail("amount_sign", f"{v} must be positive")
    if n > U128_MAX:
        raise _fail("amount_range", f"{v} does not fit u128")
    return v


def _u128(v: str) -> str:
    n = _integer(v)
    if n < 0:
        raise _fail("amount_sign", f"{v} must not be negative")
    if n > U128_MAX:
        raise _fail("amount_range", f"{v} does not fit u128")
    return v


def _delta_i128(v: str) -> str:
    n = _integer(v)
    if n == 0:
        raise _fail("amount_zero", "a token_diff delta is never 0: leave the token out")
    if not I128_MIN <= n <= I128_MAX:
        raise _fail("amount_range", f"{v} does not fit i128")
    return v


def _public_key(v: str) -> str:
    if not _PUBLIC_KEY.fullmatch(v):
        raise _fail("public_key", f"{v[:80]!r} is not a public key: CURVE:BASE58 (ed25519, secp256k1, p256)")
    return v


def _now(info: ValidationInfo) -> datetime:
    clock: Callable[[], datetime] | None = (info.context or {}).get("now")
    return clock() if clock else datetime.now(timezone.utc)


def _rfc3339_future(v: str, info: ValidationInfo) -> str:
    try:
        when = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise _fail("deadline_format", f"{v[:80]!r} is not an RFC 3339 time (2026-01-05T00:02:17.446Z)") from None
    if when.tzinfo is None:
        raise _fail("deadline_format", f"{v!r} has no time zone: end it with Z")
    if when <= _now(info):
        raise _fail("deadline_past", f"the deadline {v} has passed")
    return v


Account = Annotated[str, AfterValidator(_account)]
TokenId = Annotated[str, AfterValidator(_token_id)]
PositiveU128 = Annotated[str, AfterValidator(_positive_u128)]
U128 = Annotated[str, AfterValidator(_u128)]
DeltaI128 = Annotated[str, AfterValidator(_delta_i128)]
PublicKey = Annotated[str, AfterValidator(_public_key)]
Deadline = Annotated[str, AfterValidator(_rfc3339_future)]
Memo = Annotated[str, Field(max_length=4096)]


class _Intent(BaseModel):
    # Unknown fields are tolerated: the Verifier adds optional ones (memo, notification, min_gas ...).
    model_config = ConfigDict(extra="allow", strict=True)


class TokenDiff(_Intent):
    intent: Literal["token_diff"]
    diff: dict[TokenId, DeltaI128] = Field(min_length=1, description="token id -> signed delta: negative gives")
    referral: Account | None = None
    memo: Memo | None = None


class Transfer(_Intent):
    intent: Literal["transfer"]
    receiver_id: Account
    tokens: dict[TokenId, PositiveU128] = Field(min_length=1)
    memo: Memo | None = None


class FtWithdraw(_Intent):
    intent: Literal["ft_withdraw"]
    token: Account = Field(description="the NEP-141 contract")
    receiver_id: Account
    amount: PositiveU128
    memo: Memo | None = None
    msg: str | None = None
    storage_deposit: U128 | None = None


class NftWithdraw(_Intent):
    intent: Literal["nft_withdraw"]
    token: Account = Field(description="the NEP-171 contract")
    receiver_id: Account
    token_id: str = Field(min_length=1)
    memo: Memo | None = None
    msg: str | None = None
    storage_deposit: U128 | None = None


class MtWithdraw(_Intent):
    intent: Literal["mt_withdraw"]
    token: Account = Field(description="the NEP-245 contract")
    receiver_id: Account
    token_ids: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    amounts: list[PositiveU128] = Field(min_length=1)
    memo: Memo | None = None
    msg: str | None = None
    storage_deposit: U128 | None = None


class NativeWithdraw(_Intent):
    intent: Literal["native_withdraw"]
    receiver_id: Account
    amount: PositiveU128 = Field(description="yoctoNEAR")


class StorageDeposit(_Intent):
    intent: Literal["storage_deposit"]
    contract_id: Account
    deposit_for_account_id: Account
    amount: PositiveU128 = Field(description="yoctoNEAR")


class AddPublicKey(_Intent):
    intent: Literal["add_public_key"]
    public_key: PublicKey


class RemovePublicKey(_Intent):
    intent: Literal["remove_public_key"]
    public_key: PublicKey


class SetAuthByPredecessorId(_Intent):
    intent: Literal["set_auth_by_predecessor_id"]
    enabled: bool


class AuthCall(_Intent):
    intent: Literal["auth_call"]
    contract_id: Account
    msg: str
    attached_deposit: U128 | None = None
    min_gas: U128 | None = None


class ImtMint(_Intent):
    intent: Literal["imt_mint"]
    receiver_id: Account
    tokens: dict[Annotated[str, Field(min_length=1)], PositiveU128] = Field(min_length=1)
    memo: Memo | None = None


class ImtBurn(_Intent):
    intent: Literal["imt_burn"]
    minter_id: Account
    tokens: dict[Annotated[str, Field(min_length=1)], PositiveU128] = Field(min_length=1)
    memo: Memo | None = None


Dip4Intent = Annotated[
    Union[TokenDiff, Transfer, FtWithdraw, NftWithdraw, MtWithdraw, NativeWithdraw, StorageDeposit, AddPublicKey,
          RemovePublicKey, SetAuthByPredecessorId, AuthCall, ImtMint, ImtBurn],
    Field(discriminator="intent"),
]
INTENT_KINDS = ("token_diff", "transfer", "ft_withdraw", "nft_withdraw", "mt_withdraw", "native_withdraw",
                "storage_deposit", "add_public_key", "remove_public_key", "set_auth_by_predecessor_id", "auth_call",
                "imt_mint", "imt_burn")


class Dip4Message(BaseModel):
    """The message JSON a NEP-413 (or any other standard's) payload signs."""

    model_config = ConfigDict(extra="allow", strict=True)

    signer_id: Account
    deadline: Deadline
    verifying_contract: Account | None = None
    nonce: str | None = None
    intents: list[Dip4Intent] = Field(min_length=1, max_length=256)


class Dip4Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    type: Literal["dip4"]
    messages: list[Dip4Message] = Field(min_length=1, max_length=64,
                                        description="more than one: a settlement, whose token_diffs balance")


def _workshop_deadline(v: int | str, info: ValidationInfo) -> int | str:
    if isinstance(v, str):
        return _rfc3339_future(v, info)
    if v <= 0:
        raise _fail("deadline_format", "the deadline is nanoseconds since the Unix epoch")
    if v <= int(_now(info).timestamp() * 1e9):
        raise _fail("deadline_past", f"the deadline {v} (ns since the epoch) has passed")
    return v


def _slippage(v: float) -> float:
    if not 0 <= v < 100:
        raise _fail("slippage_range", f"max_slippage {v} is a percentage: 0 <= max_slippage < 100")
    return v


def _token(v: str) -> str:
    return _token_id(v) if ":" in v else _account(v)


class WorkshopIntent(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")
    user_account: Account
    action: str = Field(min_length=1, max_length=64)
    input_token: Annotated[str, AfterValidator(_token)]
    input_amount: PositiveU128
    output_token: Annotated[str, AfterValidator(_token)]
    min_output_amount: PositiveU128
    max_slippage: Annotated[float, Field(strict=False), AfterValidator(_slippage)]
    deadline: Annotated[int | str, AfterValidator(_workshop_deadline)] = Field(
        description="nanoseconds since the Unix epoch (or an RFC 3339 time)")


class WorkshopRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    type: Literal["workshop"]
    intent: WorkshopIntent


ValidateRequest = Annotated[Union[Dip4Request, WorkshopRequest], Field(discriminator="type")]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(ValidateRequest)
_UNION_TAGS = frozenset({"dip4", "workshop", *INTENT_KINDS})


def validate(body: Any, now: Callable[[], datetime] | None = None) -> ValidationResult:
    """Every problem of ``body``; never raises for any JSON value."""
    try:
        parsed = _ADAPTER.validate_python(body, context={"now": now} if now else None)
    except ValidationError as exc:
        issues = [_issue(e) for e in exc.errors(include_url=False)]
        return ValidationResult(valid=False, errors=issues + _same_token(body))
    issues = _semantic(parsed)
    return ValidationResult(valid=not issues, errors=issues)


def _issue(err: Any) -> Issue:
    return Issue(path=_path(err["loc"]), code=str(err["type"]), message=str(err["msg"]))


def _path(loc: tuple[Any, ...]) -> str:
    """Pydantic's location as a JSON path, without the union tags it inserts after a list index."""
    out = "$"
    previous_was_index = True  # the root behaves like an index: its union tag is dropped too
    for part in loc:
        if part == "[key]":  # the error is about the key itself, already in the path
            continue
        if isinstance(part, int):
            out += f"[{part}]"
            previous_was_index = True
            continue
        if previous_was_index and part in _UNION_TAGS:
            previous_was_index = False
            continue
        previous_was_index = False
        text = str(part)
        out += f".{text}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text) else f"[{text!r}]"
    return out


def _same_token(body: Any) -> list[Issue]:
    """A workshop intent swapping a token for itself; checked on the raw body, so that it is
    reported together with the errors of other fields."""
    intent = body.get("intent") if isinstance(body, dict) and body.get("type") == "workshop" else None
    if isinstance(intent, dict) and isinstance(intent.get("input_token"), str) \
            and intent.get("input_token") == intent.get("output_token"):
        return [Issue(path="$.intent.output_token", code="same_token",
                      message="input_token and output_token must differ")]
    return []


def _semantic(req: Dip4Request | WorkshopRequest) -> list[Issue]:
    """Rules across fields, checked once every field is valid."""
    if isinstance(req, WorkshopRequest):
        return _same_token(req.model_dump())
    issues = []
    for m, message in enumerate(req.messages):
        for n, intent in enumerate(message.intents):
            if isinstance(intent, MtWithdraw) and len(intent.token_ids) != len(intent.amounts):
                issues.append(Issue(path=f"$.messages[{m}].intents[{n}].amounts", code="length_mismatch",
                                    message=f"{len(intent.amounts)} amounts for {len(intent.token_ids)} token_ids"))
            if isinstance(intent, Transfer) and intent.receiver_id == message.signer_id:
                issues.append(Issue(path=f"$.messages[{m}].intents[{n}].receiver_id", code="self_transfer",
                                    message="a transfer to the signer itself moves nothing"))
    if len(req.messages) > 1:
        issues.extend(_unbalanced(req))
    return issues


def _unbalanced(req: Dip4Request) -> list[Issue]:
    """A settlement's token_diffs net to zero per token (the Verifier panics on unmatched deltas)."""
    totals: dict[str, int] = {}
    for message in req.messages:
        for intent in message.intents:
            if isinstance(intent, TokenDiff):
                for token, amount in intent.diff.items():
                    totals[token] = totals.get(token, 0) + int(amount)
    return [Issue(path="$.messages", code="unbalanced",
                  message=f"the token_diffs of {token} add up to {total:+d}, not 0")
            for token, total in sorted(totals.items()) if total]
