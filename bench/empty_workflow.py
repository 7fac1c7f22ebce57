"""The baselines: Temporal workflows that do nothing but what Temporal itself must do."""

from temporalio import workflow


@workflow.defn
class EmptyWorkflow:
    @workflow.run
    async def run(self) -> None:
        return None


@workflow.defn
class SignalledWorkflow:
    """Waits for one signal, then completes: the floor of an approval by signal."""

    def __init__(self) -> None:
        self._signalled = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self._signalled)

    @workflow.signal
    def go(self) -> None:
        self._signalled = True

    @workflow.query
    def waiting(self) -> bool:
        return True
