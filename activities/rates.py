"""admit_rate: does this request fit the agent's rate limits? Counted once per request."""

from __future__ import annotations

from temporalio import activity

from proctor.contract import ADMIT_RATE
from proctor.models import RateCheck, RateVerdict
from proctor.stores.rates import RateStore


class RateActivities:
    def __init__(self, rates: RateStore) -> None:
        self.rates = rates

    @activity.defn(name=ADMIT_RATE)
    async def admit_rate(self, check: RateCheck) -> RateVerdict:
        return await self.rates.admit(check)
