"""The shared vehicle model: lag, minimum current, onboard limit, taper and completion."""

import pytest

from drivers.model import Iec61851State
from drivers.sim.vehicle import Vehicle, VehicleSpec, taper_limit_a


def test_follows_an_offer_after_its_lag_and_never_above_onboard_limit() -> None:
    car = Vehicle(VehicleSpec("car", onboard_limit_a=16, lag_s=3))
    car.offer(32, now=0)
    car.advance(2.9)
    assert car.drawn_a == 0 and car.state(2.9) is Iec61851State.B
    car.advance(3.0)
    assert car.drawn_a == 16 and car.state(3.0) is Iec61851State.C


def test_decrease_also_takes_the_lag_and_below_six_amps_it_stops() -> None:
    car = Vehicle(VehicleSpec("car", lag_s=2))
    car.offer(20, 0)
    car.advance(5)
    car.offer(5, 5)
    car.advance(6.5)
    assert car.drawn_a == 20
    car.advance(7)
    assert car.drawn_a == 0


def test_energy_is_current_times_voltage_times_phases() -> None:
    car = Vehicle(VehicleSpec("car", phases=1, lag_s=0, battery_kwh=100, soc_start=0.1))
    car.offer(10, 0)
    car.advance(3600)
    assert car.energy_wh == pytest.approx(10 * 230 * 3600 / 3600)
    assert car.phase_currents_a() == (10, 0, 0)


def test_taper_is_linear_above_eighty_percent_and_session_ends() -> None:
    assert taper_limit_a(32, 0.9) == pytest.approx(16)
    car = Vehicle(VehicleSpec("car", lag_s=0, battery_kwh=10, soc_start=0.79))
    car.offer(32, 0)
    car.advance(10 * 3600)
    assert car.full and car.drawn_a == 0 and car.state(10 * 3600) is Iec61851State.B


def test_departure_stops_everything() -> None:
    car = Vehicle(VehicleSpec("car", lag_s=0, arrival_s=100, departure_s=200))
    car.offer(32, 100)
    car.advance(300)
    assert not car.present(300) and car.state(300) is Iec61851State.A
    assert car.energy_wh == pytest.approx(32 * 230 * 3 * 100 / 3600)
