"""The REST API of `legato.ai`: stored prompts, a run's model-call tries, and forks.

``GET /api/prompts`` (names), ``/api/prompts/{name}`` (its versions, newest first),
``/api/prompts/{name}/versions/{version}`` (one version: template and system part
apart; a unique prefix works), ``/api/prompts/{name}/diff?a=V1&b=V2`` (unified
diffs); ``GET /api/runs/{id}/llm_calls`` (every recorded try, in order);
``POST /api/runs/{id}/fork`` (a fork queued for the workers of a deployment's run).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from legato.client import Client
from legato.client.prompts import (
    llm_call_to_dict,
    prompt_diff_to_dict,
    prompt_summary_to_dict,
    prompt_version_to_dict,
)
from legato.client.views import flow_run_to_dict
from legato.server.api import client_of
from legato.server.errors import error_responses
from legato.server.security import require_token

router = APIRouter(
    prefix="/api",
    dependencies=[Depends(require_token)],
    tags=["ai"],
    responses=error_responses(401, 403, 422, 503),
)
ClientDep = Annotated[Client, Depends(client_of)]
_NOT_FOUND = error_responses(404, 409)

_NAME = {"min_length": 1, "max_length": 200, "pattern": r"^[^\x00-\x1f\x7f]+$"}
PromptName = Annotated[str, Path(description="The prompt's name.", **_NAME)]
_VERSION = r"^[0-9a-f]{1,64}$"
Version = Annotated[
    str,
    Path(description="A version, or a unique prefix of at least 4 characters.", pattern=_VERSION),
]
VersionQuery = Annotated[
    str, Query(description="A version, or a unique prefix of one.", pattern=_VERSION)
]


class ForkBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=False)

    from_key: str = Field(
        alias="from",
        strict=True,
        min_length=1,
        max_length=1000,
        pattern=r"^[^\x00]+$",
        description="The call key of the step to run again, e.g. 'llm[2]'.",
    )


@router.get("/prompts")
def list_prompts(client: ClientDep) -> dict[str, Any]:
    """Every stored prompt by name, with its number of versions and the newest one."""
    return {"prompts": [prompt_summary_to_dict(p) for p in client.prompts()]}


@router.get("/prompts/{name}", responses=_NOT_FOUND)
def prompt_versions(name: PromptName, client: ClientDep) -> dict[str, Any]:
    """The versions of a prompt, newest first (template and system part of each)."""
    versions = client.prompt_versions(name)
    return {"name": name, "versions": [prompt_version_to_dict(v) for v in versions]}


@router.get("/prompts/{name}/versions/{version}", responses=_NOT_FOUND)
def prompt_version(name: PromptName, version: Version, client: ClientDep) -> dict[str, Any]:
    """One version of a prompt; 409 when a prefix matches several versions."""
    return prompt_version_to_dict(client.prompt(name, version))


@router.get("/prompts/{name}/diff", responses=_NOT_FOUND)
def prompt_diff(
    name: PromptName, a: VersionQuery, b: VersionQuery, client: ClientDep
) -> dict[str, Any]:
    """Unified diffs of the template and of the system part from version ``a`` to
    ``b`` (empty text: that part did not change)."""
    return prompt_diff_to_dict(client.prompt_diff(name, a, b))


@router.get("/runs/{run_id}/llm_calls", responses=_NOT_FOUND)
def run_llm_calls(run_id: str, client: ClientDep) -> dict[str, Any]:
    """The run's model-call tries in order (a fork's copies carry ``copied_from``)."""
    return {"llm_calls": [llm_call_to_dict(r) for r in client.llm_calls(run_id)]}


@router.post("/runs/{run_id}/fork", responses=error_responses(400, 404, 409))
def fork_run(run_id: str, body: ForkBody, client: ClientDep) -> dict[str, Any]:
    """Fork a deployment's run from the step at ``from``: a new run with the same
    parameters, queued for a worker of its work queue, that replays the steps
    recorded before that step and runs the rest again. A run started from a
    terminal is forked where its code is: `legato fork RUN --from KEY` (409 here);
    a key the run never recorded answers 422 naming some it did."""
    return flow_run_to_dict(client.fork_run(run_id, body.from_key, start=False))
