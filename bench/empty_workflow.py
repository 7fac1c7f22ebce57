"""The baseline: a workflow that does nothing, on the same server and worker process."""

from temporalio import workflow


@workflow.defn
class EmptyWorkflow:
    @workflow.run
    async def run(self) -> None:
        return None
