"""The operator API's request and answer bodies as pydantic models (what the handler
validates at the edge, and what docs/operator-openapi.json describes)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from billing.core.fields import LocalDate


class EndRequest(BaseModel):
    """`POST /operator/accounts/{id}/end`: the day the subscription ends."""

    model_config = ConfigDict(extra="forbid")

    end: LocalDate = Field(
        description="YYYY-MM-DD, exclusive (the last day billed is the day before), a local "
        "midnight later than now plus the push lead, as `end` in an accounts file"
    )


class AccountPageBody(BaseModel):
    """`GET /operator/accounts`: one page of the stored accounts, by id within the page."""

    accounts: list[dict[str, Any]] = Field(
        description="Each account as stored (the accounts file's form)"
    )
    next: str | None = Field(
        description="The token of the next page (`?next=`); null after the last. A page "
        "may hold fewer accounts than `limit`, even none, while there are more"
    )
