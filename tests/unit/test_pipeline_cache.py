"""MessageCache classes and CachingPipe: eviction orders, bounds, indexing, prefetch, pickling and state."""

import pickle

import numpy as np
import pytest
import torch
from pipeline_helpers import Counting

from flambe.pipeline.cache import LFUCache, LRUCache, MessageCache, RRCache, UnlimitedCache
from flambe.pipeline.caching import CachingPipe
from flambe.pipeline.message import Message
from flambe.pipeline.pipe import Pipe, gather_rows, normalize_index
from flambe.pipeline.pipes import BatchingPipe, LoopingPipe, ShufflerPipe


def make(n=60):
    return Message({"x": torch.arange(n), "v": torch.arange(n * 3, dtype=torch.float32).reshape(n, 3),
                    "s": [f"r{i}" for i in range(n)], "f": np.arange(n) * 0.5})


class BlockSource(Pipe):
    """An indexable source that builds each block on demand (holding nothing) and counts block reads."""

    def __init__(self, n=2000, block=100):
        super().__init__(None)
        self.n, self.block = n, block
        self.reads = np.zeros(-(-n // block), dtype=np.int64)

    @property
    def indexable(self):
        return True

    @property
    def block_size(self):
        return self.block

    def block_offsets(self):
        return np.append(np.arange(0, self.n, self.block), self.n).astype(np.int64)

    def __len__(self):
        return self.n

    def _read(self, b):
        self.reads[b] += 1
        ids = torch.arange(b * self.block, min(self.n, (b + 1) * self.block))
        return Message({"id": ids, "x": ids[:, None].float() * 2 + torch.arange(4)})

    def __getitem__(self, index):
        return gather_rows(self._read, self.block_offsets(), normalize_index(index, self.n))


# ---------------------------------------------------------------------------------------------- caches
def test_lru_eviction_order():
    m, c = make(), LRUCache(max_rows=3)
    c[[0, 1, 2]] = m[[0, 1, 2]]
    c[0]
    c[3] = m[3]  # 1 is the least recently used
    assert c.cache_index.tolist() == [0, 2, 3]
    c[2]
    c[[4]] = m[[4]]  # 0 now
    assert c.cache_index.tolist() == [2, 3, 4]
    c[3] = m[3]  # writing counts as use
    assert c.free(1).tolist() == [2] and c.free(5).tolist() == [4, 3] and len(c) == 0


def test_lfu_eviction_order_and_ties():
    m, c = make(), LFUCache(max_rows=3)
    c[0:3] = m[0:3]
    c[[0, 0, 2]]
    c[3] = m[3]  # 1 has one use
    assert c.cache_index.tolist() == [0, 2, 3]
    c[4] = m[4]  # 3 has one use (0 has three, 2 two)
    assert c.cache_index.tolist() == [0, 2, 4]
    c[4]
    c[5] = m[5]  # 2 and 4 tie on uses: 2 was used less recently
    assert c.cache_index.tolist() == [0, 4, 5]


def test_rr_is_seeded_and_bounded():
    m = make()

    def run(seed):
        c = RRCache(max_rows=10, seed=seed, length=60)
        for i in range(0, 60, 7):
            c[i:i + 7] = m[i:i + 7]
            assert len(c) <= 10
        assert c[c.cache_index] == m[c.cache_index]
        return c.cache_index.tolist()

    assert run(3) == run(3)
    assert len({tuple(run(s)) for s in range(5)}) > 1


def test_fifo_and_unlimited():
    m = make()
    c = MessageCache(max_rows=4)
    c[[5, 1, 9]] = m[[5, 1, 9]]
    c[5]
    c[[2, 3]] = m[[2, 3]]  # the earliest inserted goes first, whatever its use
    assert c.cache_index.tolist() == [1, 2, 3, 9]
    u = UnlimitedCache()
    for i in range(0, 60, 10):
        u[i:i + 10] = m[i:i + 10]
    assert len(u) == 60 and u[:] == m and u.capacity is None
    assert u.free(3).tolist() == [0, 1, 2] and len(u) == 57


def test_byte_bound():
    m = Message({"x": torch.zeros(100, 4, dtype=torch.int64), "y": torch.arange(100)})  # 40 bytes a row
    c = LRUCache(max_bytes=400)
    c[0:25] = m[0:25]  # more than fits: the first rows given are kept
    assert len(c) == 10 and c.capacity == 10 and c.cache_index.tolist() == list(range(10))
    c[50:55] = m[50:55]
    assert len(c) == 10 and c.nbytes == 400 and c.allocated_bytes <= 400
    assert c.cache_index.tolist() == [5, 6, 7, 8, 9, 50, 51, 52, 53, 54]
    both = LRUCache(max_rows=3, max_bytes=400, buffer_size=2)
    both[0:3] = m[0:3]
    both[3] = m[3]  # needs one slot, frees one more
    assert both.cache_index.tolist() == [2, 3]


def test_delete_middle_slice_and_reuse():
    m, c = make(), UnlimitedCache()
    c[0:20] = m[0:20]
    del c[5:15]
    assert c.cache_index.tolist() == [0, 1, 2, 3, 4, 15, 16, 17, 18, 19] and len(c) == 10
    assert c[[19, 0, 15, 4]] == m[[19, 0, 15, 4]]
    del c[0:100:2]  # absent rows in a slice are skipped
    assert c.cache_index.tolist() == [1, 3, 15, 17, 19]
    c[[7, 8]] = m[[7, 8]]
    assert c[c.cache_index] == m[c.cache_index]
    with pytest.raises(KeyError):
        del c[2]
    with pytest.raises(KeyError):
        c[[1, 2]]


def test_negative_list_and_mask_indices():
    m, c = make(20), UnlimitedCache(length=20)
    c[-3:] = m[-3:]
    assert c.cache_index.tolist() == [17, 18, 19]
    assert c[-1] == m[19] and len(c[-1]) == 1
    assert c[[-2, 17]] == m[[18, 17]] and c[np.array([19, 18])] == m[[19, 18]]
    assert c[torch.tensor([17, 19])] == m[[17, 19]]
    mask = np.zeros(20, dtype=bool)
    mask[[17, 19]] = True
    assert c[mask] == m[mask]
    free = UnlimitedCache()  # no length: negatives count from one past the highest row cached
    free[[2, 6]] = m[[2, 6]]
    assert free[-1] == m[6]


def test_mixed_present_absent_insert_and_duplicates():
    m, c = make(), LRUCache(max_rows=10)
    c[0:5] = m[0:5]
    new = m[[33, 34, 35, 36]].map({"x": lambda t: t + 1000})
    c[[3, 8, 1, 12]] = new
    assert c.cache_index.tolist() == [0, 1, 2, 3, 4, 8, 12]
    assert c[[3, 8, 1, 12]] == new and c[[0, 2, 4]] == m[[0, 2, 4]]
    c[[7, 7, 7]] = m[[40, 41, 42]]  # the last row given wins
    assert c[7] == m[42]


def test_contains_len_and_layout_checks():
    m, c = make(), LRUCache(max_rows=5)
    assert len(c) == 0 and 3 not in c
    c[2:4] = m[2:4]
    assert 2 in c and [2, 3] in c and [2, 4] not in c and slice(2, 4) in c and "x" not in c
    assert c.contains([1, 2, 3, 4]).tolist() == [False, True, True, False]
    with pytest.raises(ValueError, match="columns"):
        c[9] = Message({"x": torch.arange(1)})
    with pytest.raises(ValueError, match="shape"):
        c[9] = m[9].map({"v": lambda t: t[:, :2]})
    with pytest.raises(ValueError, match="indices"):
        c[[1, 2]] = m[0]


def test_frame_dtypes_sort_and_search():
    m, c = make(), LRUCache(max_rows=20)
    c[[9, 3, 7, 1]] = m[[9, 3, 7, 1]]
    out = c[[1, 9]]
    assert out == m[[1, 9]] and out["s"].dtype == m["s"].dtype and out["f"].dtype == m["f"].dtype
    c.sort()
    assert c._slot_index[:4].tolist() == [1, 3, 7, 9] and c[[7, 1]] == m[[7, 1]]
    assert c.search(s="r7").tolist() == [7] and c.search(x=3, f=1.5).tolist() == [3]
    assert c.search(v=torch.tensor([27.0, 28.0, 29.0])).tolist() == [9]
    assert pickle.loads(pickle.dumps(c))[[3, 9]] == m[[3, 9]]


# ---------------------------------------------------------------------------------------------- CachingPipe
@pytest.mark.parametrize("kind", ["LRU", "LFU", "RR", "FIFO", "unlimited"])
def test_caching_pipe_matches_source(kind):
    m = make(200)
    sources = [m, [m[i:i + 30] for i in range(0, 200, 30)],
               LoopingPipe(Counting([m[i:i + 30] for i in range(0, 200, 30)], 30))]
    rng = np.random.default_rng(1)
    for src in sources:
        pipe = CachingPipe(src, cache_size=None if kind == "unlimited" else 40, cache_type=kind)
        for _ in range(40):
            idx = rng.integers(-200, 200, size=int(rng.integers(1, 50)))
            assert pipe[idx] == m[idx]
        assert pipe[7] == m[7] and pipe[-5:] == m[-5:] and pipe[10:150:7] == m[10:150:7]
        assert len(pipe) == 200 and pipe.hits + pipe.misses > 0 and len(pipe.cache) <= 200


def test_mixed_request_keeps_order_and_fetches_once_per_run():
    src = BlockSource(1000, 100)
    pipe = CachingPipe(src, cache_size=500)
    pipe[100:200]
    before = pipe.source_requests
    rows = [150, 420, 101, 421, 422, 999, 160]  # present, absent, present, absent ... (short runs)
    out = pipe[rows]
    assert out["id"].tolist() == rows and pipe.source_requests == before + 1
    assert (pipe.hits, pipe.misses) == (3, 104)
    pipe[list(range(600, 700)) + [5]]  # a long run (one slice) and a short one (one list)
    assert pipe.source_requests == before + 3
    scattered = np.random.default_rng(0).choice(np.arange(800, 900), 40, replace=False)
    reads = src.reads.sum()
    assert pipe[scattered]["id"].tolist() == scattered.tolist()
    assert src.reads.sum() == reads + 1  # 40 scattered misses in one block: one read


def test_iteration_goes_through_the_cache():
    m = make(100)
    pipe = CachingPipe(LoopingPipe(Counting([m[i:i + 30] for i in range(0, 100, 30)], 30)))
    assert [len(b) for b in pipe] == [30, 30, 30, 10]
    assert list(pipe) == [m[0:30], m[30:60], m[60:90], m[90:100]]
    assert pipe.hits == 100 and pipe.misses == 100


def test_infinite_input():
    class Forever:
        def __iter__(self):
            i = 0
            while True:
                yield Message({"x": torch.arange(i, i + 10)})
                i += 10

    pipe = CachingPipe(LoopingPipe(Pipe(Forever())), cache_size=50, infinite=True)
    assert pipe[[123, 5]]["x"].tolist() == [123, 5] and pipe[40:43]["x"].tolist() == [40, 41, 42]
    with pytest.raises(IndexError):
        pipe[-1]
    with pytest.raises(TypeError):
        len(pipe)
    assert next(iter(pipe))["x"].tolist() == list(range(10))


def test_prefetch_reduces_reads_of_a_block_shuffled_stream():
    m = Message({"x": torch.arange(2000)})
    blocks = [m[i:i + 50] for i in range(0, 2000, 50)]

    def epoch(prefetch):
        stream = Counting(blocks, 50)
        cache = CachingPipe(LoopingPipe(stream), cache_size=400, prefetch=prefetch)
        len(cache)
        stream.reads = 0
        shuffler = ShufflerPipe(cache, seed=4)  # registers itself as the cache's consumer
        assert cache.consumer is shuffler
        rows = torch.cat([b["x"] for b in BatchingPipe(shuffler, batch_size=32)])
        assert sorted(rows.tolist()) == list(range(2000))
        return stream.reads, cache

    plain, _ = epoch(0)
    reads, cache = epoch(300)
    assert reads < 0.6 * plain, (reads, plain)
    assert cache.misses == 50 and cache.prefetched == 1950 and len(cache.cache) <= 400


def test_block_source_read_once_per_epoch_with_small_cache():
    src = BlockSource(4000, 100)
    cache = CachingPipe(src, cache_bytes=4000 * 24 // 8, prefetch=100)  # 24 bytes a row: 500 rows
    shuffler = cache.register_consumer(ShufflerPipe(cache, seed=0))
    seen = torch.cat([b["id"] for b in shuffler])
    assert sorted(seen.tolist()) == list(range(4000)) and src.reads.tolist() == [1] * 40
    assert cache.cache.capacity == 500 and cache.misses == 100


def test_an_unpickled_shuffler_registers_again_with_its_cache():
    cache = CachingPipe(LoopingPipe(Counting([make(100)[i:i + 20] for i in range(0, 100, 20)], 20)), cache_size=50)
    copy = pickle.loads(pickle.dumps(ShufflerPipe(cache, seed=1)))
    assert copy.input.consumer is copy


def test_pickle_drops_cache_and_consumer():
    m = make(100)
    pipe = CachingPipe(LoopingPipe(Counting([m[i:i + 20] for i in range(0, 100, 20)], 20)), cache_size=50,
                       prefetch=10)
    shuffler = pipe.register_consumer(ShufflerPipe(pipe, seed=1))
    pipe[[3, 4, 60]]
    clone = pickle.loads(pickle.dumps(pipe))
    assert clone._cache is None and clone.consumer is None and shuffler is not None
    assert (clone.hits, clone.misses) == (pipe.hits, pipe.misses)
    assert clone[[60, 3]] == m[[60, 3]] and clone.misses == pipe.misses + 2
    whole = pickle.loads(pickle.dumps(BatchingPipe(shuffler, batch_size=8)))
    assert sorted(torch.cat([b["x"] for b in whole]).tolist()) == list(range(100))


def test_state_counters_survive_save_and_load(tmp_path):
    import flambe

    m = make(100)
    pipe = CachingPipe(LoopingPipe(Counting([m[i:i + 20] for i in range(0, 100, 20)], 20)), cache_size=50)
    pipe[[3, 4, 60]]
    pipe[[3, 61]]
    it = iter(pipe)
    next(it)
    state = pipe.get_state()
    assert not any(isinstance(v, (torch.Tensor, Message)) for v in state.values())
    assert (state["hits"], state["misses"], state["requests"]) == (pipe.hits, pipe.misses, pipe.source_requests)
    flambe.save(pipe, str(tmp_path / "save"))
    loaded = flambe.load(str(tmp_path / "save"))
    assert (loaded.hits, loaded.misses, loaded.source_requests) == (pipe.hits, pipe.misses, pipe.source_requests)
    assert loaded._cache is None and list(loaded) == [m[20:40], m[40:60], m[60:80], m[80:100]]


def test_caches_and_experiment_folders_build_from_yaml(tmp_path):
    from flambe.compile import yaml
    from flambe.pipeline import ExperimentFolder
    cache = yaml.load("!LRUCache {max_rows: 10}")
    assert isinstance(cache, LRUCache) and cache.capacity == 10
    folder = yaml.load(f"!ExperimentFolder {{experiment_name: runs, db_path: '{tmp_path}'}}")
    assert isinstance(folder, ExperimentFolder) and folder.path == str(tmp_path / "runs_1")
