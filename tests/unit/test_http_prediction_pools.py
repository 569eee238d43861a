"""Prediction clients from the triggerer: shards of a bounded size, never a queue for a connection."""

from __future__ import annotations

import asyncio
import contextlib

import httpx

from airflow_provider_aihubmix.http.clients import PREDICTION_SHARD, PredictionPools


async def test_requests_spread_over_shards_that_never_exceed_their_size() -> None:
    made: list[httpx.AsyncClient] = []

    def make() -> httpx.AsyncClient:
        made.append(httpx.AsyncClient())
        return made[-1]

    pools = PredictionPools(make)
    async with contextlib.AsyncExitStack() as stack:
        borrowed = [await stack.enter_async_context(pools.borrow()) for _ in range(2 * PREDICTION_SHARD + 5)]
        # 69 requests in flight: three shards, none holding more than a shard's worth.
        assert len(made) == 3
        assert max(borrowed.count(client) for client in made) == PREDICTION_SHARD
    # All returned: the next request reuses a shard (its pooled connections) instead of a new one.
    async with pools.borrow() as client:
        assert client in made and len(made) == 3
    await pools.aclose()
    assert all(client.is_closed for client in made)


async def test_a_closed_shard_is_replaced() -> None:
    pools = PredictionPools(httpx.AsyncClient)
    async with pools.borrow() as first:
        pass
    await first.aclose()
    async with pools.borrow() as second:
        assert second is not first and not second.is_closed
    await pools.aclose()


def test_a_thousand_in_flight_take_a_thousand_over_shard_size_shards() -> None:
    async def main() -> int:
        pools = PredictionPools(httpx.AsyncClient)
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(1000):
                await stack.enter_async_context(pools.borrow())
            shards = len(pools._shards)
        await pools.aclose()
        return shards

    assert asyncio.run(main()) == -(-1000 // PREDICTION_SHARD)
