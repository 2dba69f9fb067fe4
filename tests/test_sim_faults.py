"""What every simulator shares: a fault it does not know is refused by name."""

from __future__ import annotations

import pytest

from srp.simulators.cisco import CiscoSimulator
from srp.simulators.logrhythm import LogRhythmSimulator
from srp.simulators.netmon import NetMonSimulator
from srp.simulators.stamus import StamusSimulator


@pytest.mark.parametrize("simulator_class", [NetMonSimulator, StamusSimulator, CiscoSimulator,
                                             LogRhythmSimulator])
def test_unknown_fault_names_are_refused(simulator_class):
    with simulator_class() as simulator:
        with pytest.raises(ValueError, match="unknown fault"):
            simulator.set_faults("teapot")
        simulator.set_faults(*simulator.fault_names)     # every known one is taken
