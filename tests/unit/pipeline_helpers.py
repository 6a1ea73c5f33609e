"""Test pipes shared by the pipeline unit tests (a plain module, imported by the test files next to it)."""

from flambe.pipeline.pipe import Pipe


class Counting(Pipe):
    """A stream (not indexable) over a list of blocks, counting the blocks it yields."""

    delegates = ("custom",)

    def __init__(self, blocks, block_size=None):
        super().__init__(blocks)
        self.reads = 0
        self._size = block_size

    @property
    def block_size(self):
        return self._size

    @property
    def indexable(self):
        return False

    def __next__(self):
        block = self._next_from_input()
        self.reads += 1
        return block

    def marker(self):
        return "counting"
