"""Threads that follow the machine's load: readings of /proc/stat, the free cores between two
readings, and the governor's decisions (two readings in a row, back up when the load leaves)."""

import pytest

from lstm_nlp.training import threads
from lstm_nlp.training.threads import Reading, ThreadGovernor, choose, free_cores


def test_proc_stat_counts_busy_time_of_the_given_cpus_only(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text(  # user nice system idle iowait irq softirq steal guest guest_nice
        "cpu  900 0 100 5000 50 0 0 0 0 0\n"
        "cpu0 300 0 50 2000 20 0 0 0 0 0\n"
        "cpu1 600 0 50 3000 30 0 0 0 0 0\n"
        "intr 12345\n")
    tick = threads.os.sysconf("SC_CLK_TCK")
    assert threads.read_proc_stat({0}, stat) == pytest.approx(350 / tick)
    assert threads.read_proc_stat({0, 1}, stat) == pytest.approx(1000 / tick)
    assert threads.read_proc_stat({0}, tmp_path / "missing") is None


@pytest.mark.parametrize("busy, own, free", [
    (2.0, 2.0, 2.0),   # all the busy time is ours (spinning included): both cores are ours
    (4.0, 2.0, 1.0),   # another process used one core for the 2 seconds
    (4.0, 0.0, 0.0),   # others took everything
    (1.0, 0.5, 1.75),  # a light load beside us
])
def test_free_cores_are_the_cores_less_what_others_used(busy, own, free):
    assert free_cores(Reading(0.0, 0.0, 0.0), Reading(busy, own, 2.0), cores=2) == \
        pytest.approx(free)


def test_whole_free_cores_make_the_threads():
    assert [choose(f, 2) for f in (2.0, 1.75, 1.7, 1.69, 1.0, 0.2)] == [2, 2, 2, 1, 1, 1]
    assert choose(7.9, 4) == 4


class FakeMachine:
    """Readings a second apart; `others` cores busy with other processes, we use 1 core."""

    def __init__(self):
        self.t, self.busy, self.own, self.others = 0.0, 0.0, 0.0, 0.0

    def advance(self, seconds: float = 1.0) -> None:
        self.t += seconds
        self.own += seconds
        self.busy += seconds * (1 + self.others)

    def read(self) -> Reading:
        return Reading(self.busy, self.own, self.t)


def test_the_governor_follows_the_load_after_two_readings_in_a_row():
    machine, set_to, said = FakeMachine(), [], []
    gov = ThreadGovernor(2, machine.read, set_to.append, lambda n, free: said.append(n),
                         interval_s=1.0, clock=lambda: machine.t)

    def second(others: float) -> None:
        machine.others = others
        machine.advance()
        gov.tick()

    second(0.0)
    assert gov.threads == 2 and set_to == []
    second(1.0)                              # a burst: one reading is not enough
    second(0.0)
    assert set_to == []
    second(1.0)
    second(1.0)                              # two in a row: down to the free core
    assert gov.threads == 1 and set_to == [1] and said == [1]
    second(1.0)
    assert set_to == [1]                     # no change, no call
    second(0.0)
    second(0.0)                              # the other process left: all cores again
    assert gov.threads == 2 and set_to == [1, 2] and said == [1, 2]


def test_the_governor_waits_for_its_interval_and_stops_without_readings():
    machine, set_to = FakeMachine(), []
    readings = [machine.read()]
    gov = ThreadGovernor(2, lambda: readings[-1], set_to.append, interval_s=5.0,
                         clock=lambda: machine.t)
    machine.others = 1.0
    for _ in range(4):
        machine.advance()
        readings.append(machine.read())
        gov.tick()
    assert gov.last == readings[0]           # 4 s < 5 s: not read yet
    readings.append(None)                    # /proc/stat gone
    machine.advance(2)
    gov.tick()
    assert gov.last is None and set_to == []
    gov.tick()                               # and it stays quiet


def test_pinned_threads_get_no_governor():
    assert threads.governor(2, lambda n, free: None) is None
