"""Tests for running on GPUs this CPU machine does not have (issue 15): the CUDA paths are exercised with faked
device counts and random states, a mocked Ray, and a faked /dev/shm, so each fix is checked without a GPU."""

from __future__ import annotations

import pytest
import torch

import shattering
from shattering.config import RunConfig
from shattering.runs.record import RunRecord
from shattering.train.in_memory import InMemoryTrainer

TINY = dict(dataset="digits", model="mlp-1x512", train_size=64, test_size=32, epochs=1, until="epochs",
            precision="fp32", device="cpu")


def _trainer(tmp_path) -> InMemoryTrainer:
    cfg = RunConfig(**TINY, out=str(tmp_path)).resolved()
    return InMemoryTrainer(cfg, shattering.make_data(cfg), RunRecord(cfg.run_dir()), False)


class FakeCuda:
    """``n`` visible GPUs, each with its own random state (a tensor holding its index)."""

    def __init__(self, monkeypatch, n: int):
        self.n, self.states, self.set_calls = n, {i: torch.tensor([i], dtype=torch.uint8) for i in range(n)}, []
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
        monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [self.states[i] for i in range(n)])
        monkeypatch.setattr(torch.cuda, "get_rng_state", self.get_rng_state)
        monkeypatch.setattr(torch.cuda, "set_rng_state", self.set_rng_state)
        monkeypatch.setattr(torch.cuda, "set_rng_state_all", self.set_rng_state_all)

    @staticmethod
    def index(device) -> int:
        device = torch.device("cuda", device) if isinstance(device, int) else torch.device(device)
        return device.index if device.index is not None else 0

    def get_rng_state(self, device="cuda"):
        return self.states[self.index(device)]

    def set_rng_state(self, state, device="cuda"):
        i = self.index(device)
        if i >= self.n:
            raise IndexError(f"no GPU {i}")
        self.set_calls.append(i)
        self.states[i] = state

    def set_rng_state_all(self, states):
        for i, state in enumerate(states):  # what torch does: one state per index
            self.set_rng_state(state, i)


# -- 1. resume restores the run's own GPU's random state -----------------------------------------------


def test_a_checkpoint_keeps_the_random_state_of_the_runs_gpu_only(tmp_path, monkeypatch):
    trainer = _trainer(tmp_path)
    cuda = FakeCuda(monkeypatch, 8)
    trainer.device = torch.device("cuda", 3)
    state = trainer.state()
    assert torch.equal(state["cuda_rng"], cuda.states[3])  # one state, not the node's eight


def test_resume_on_fewer_gpus_restores_the_runs_gpu_from_an_old_checkpoint(tmp_path, monkeypatch):
    trainer = _trainer(tmp_path)
    state = trainer.state()
    eight = [torch.tensor([10 + i], dtype=torch.uint8) for i in range(8)]  # written on an 8-GPU node
    cuda = FakeCuda(monkeypatch, 2)
    trainer.device = torch.device("cuda", 1)
    trainer.restore({**state, "cuda_rng": eight})
    assert cuda.set_calls == [1] and torch.equal(cuda.states[1], eight[1])


def test_an_old_checkpoint_without_the_runs_gpu_is_skipped_with_a_note(tmp_path, monkeypatch):
    trainer = _trainer(tmp_path)
    state = trainer.state()
    cuda = FakeCuda(monkeypatch, 4)
    trainer.device = torch.device("cuda", 3)
    trainer.restore({**state, "cuda_rng": [torch.tensor([7], dtype=torch.uint8)]})  # one GPU then
    assert cuda.set_calls == [] and any("GPU 3" in w for w in trainer.book.warnings)


def test_a_new_checkpoint_restores_its_one_state(tmp_path, monkeypatch):
    trainer = _trainer(tmp_path)
    cuda = FakeCuda(monkeypatch, 2)
    trainer.device = torch.device("cuda", 1)
    state = trainer.state()
    cuda.states[1] = torch.tensor([99], dtype=torch.uint8)
    trainer.restore(state)
    assert cuda.set_calls == [1] and torch.equal(cuda.states[1], torch.tensor([1], dtype=torch.uint8))


def test_a_run_forks_the_random_state_of_its_own_gpu(monkeypatch):
    from shattering.runs.lifecycle import forked_gpus

    FakeCuda(monkeypatch, 4)  # GPU 0 is current
    dist = type("Dist", (), {"device": torch.device("cuda", 2)})()
    assert forked_gpus(RunConfig(**TINY | {"device": "cuda"}), dist) == [2]
    assert forked_gpus(RunConfig(**TINY | {"device": "auto"}), None) == [0]
    assert forked_gpus(RunConfig(**TINY), None) == []  # device="cpu"


# -- 2 and 3. Ray: a task without a GPU trains on the CPU, GPU tasks get fresh workers, ids match the workers' -


class FakeRay:
    """Enough of Ray for run_ray: tasks run at once, in this process; what each was asked for is kept."""

    class exceptions:  # noqa: N801 (ray.exceptions)
        class RayError(Exception):
            pass

        class RayTaskError(RayError):
            pass

    def __init__(self, gpus: float):
        self.gpus, self.tasks, self.sent = gpus, [], []

    def is_initialized(self):
        return True

    def cluster_resources(self):
        return {"CPU": 16.0, "GPU": self.gpus}

    def remote(self, *args, **options):
        if args and callable(args[0]):
            return self._Remote(self, args[0], {})
        return lambda fn: self._Remote(self, fn, options)

    class _Remote:
        def __init__(self, ray, fn, options):
            self.ray, self.fn, self.opts = ray, fn, options

        def options(self, **more):
            return FakeRay._Remote(self.ray, self.fn, {**self.opts, **more})

        def remote(self, *args):
            self.ray.tasks.append((self.fn.__name__, self.opts))
            return FakeRay.Ref(self.fn(*args))

    class Ref:
        def __init__(self, value):
            self.value = value

    def wait(self, refs, num_returns=1):
        return [refs[0]], refs[1:]

    def get(self, ref):
        return ref.value


@pytest.fixture
def fake_ray(monkeypatch):
    from shattering.executors import ray_executor
    from shattering.executors.outcome import Outcome

    def make(gpus: float):
        ray = FakeRay(gpus)
        monkeypatch.setattr(ray_executor, "import_ray", lambda: ray)

        def run_group(group, marker, threads, keep_checkpoints="last"):
            ray.sent.extend(group)
            return [Outcome(cfg, cfg.run_dir(), error="not trained here") for cfg in group]

        monkeypatch.setattr(ray_executor, "_run_group", run_group)
        return ray
    return make


def _ray_configs(tmp_path, **changes):
    return [RunConfig(**TINY | {"device": "auto", "precision": "auto", "seed": s} | changes, out=str(tmp_path))
            for s in range(2)]


def test_a_ray_task_without_a_gpu_trains_on_the_cpu(tmp_path, fake_ray, monkeypatch):
    from shattering.executors.ray_executor import run_ray

    ray = fake_ray(gpus=8)
    FakeCuda(monkeypatch, 8)  # the driver's node has GPUs, and Ray 2.x does not hide them from a task
    list(run_ray(_ray_configs(tmp_path), pack=1, options={"gpus_per_run": 0}))
    assert [cfg.device for cfg in ray.sent] == ["cpu", "cpu"]
    assert all(opts.get("num_gpus") == 0 and opts.get("max_calls", 0) != 1 for name, opts in ray.tasks
               if name == "_run_group")


def test_a_ray_task_without_a_gpu_refuses_device_cuda(tmp_path, fake_ray):
    from shattering.errors import ConfigError
    from shattering.executors.ray_executor import run_ray

    fake_ray(gpus=8)
    with pytest.raises(ConfigError, match="--gpus-per-run"):
        list(run_ray(_ray_configs(tmp_path, device="cuda"), pack=1, options={"gpus_per_run": 0}))


def test_ray_gpu_tasks_get_a_fresh_worker_and_the_workers_precision(tmp_path, fake_ray, monkeypatch):
    from shattering import devices
    from shattering.executors.ray_executor import run_ray

    ray = fake_ray(gpus=4)
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: False)  # a driver whose CPU computes fp32
    configs = _ray_configs(tmp_path)
    driver_ids = [cfg.run_id() for cfg in configs]  # a CPU driver: fp32 here
    FakeCuda(monkeypatch, 1)  # what the tasks see (they run in this process): one bf16 GPU
    outcomes = list(run_ray(configs, pack=1, options={"gpus_per_run": 0.5}))
    assert [cfg.device for cfg in ray.sent] == ["cuda", "cuda"]
    assert [cfg.precision for cfg in ray.sent] == ["bf16", "bf16"]  # the probe's answer, pinned by the driver
    assert all(opts.get("num_gpus") == 0.5 and opts.get("max_calls") == 1 for _, opts in ray.tasks)
    assert {o.config.run_id() for o in outcomes} == {cfg.resolved().run_id() for cfg in ray.sent}
    assert RunConfig(**TINY | {"precision": "bf16"}).run_id() == ray.sent[0].replace(seed=0).run_id()
    assert driver_ids != [cfg.run_id() for cfg in ray.sent]


def test_ray_refuses_gpus_the_cluster_does_not_have(tmp_path, fake_ray):
    from shattering.errors import ConfigError
    from shattering.executors.ray_executor import run_ray

    fake_ray(gpus=0)
    with pytest.raises(ConfigError, match="GPU"):
        list(run_ray(_ray_configs(tmp_path), pack=1, options={"gpus_per_run": 1}))


# -- 5. ImageNet batches in flight fit the shared memory -----------------------------------------------


def _fake_shm(monkeypatch, free_bytes: int) -> None:
    import os

    monkeypatch.setattr(os, "statvfs", lambda path: type("St", (), {"f_bavail": free_bytes // 4096,
                                                                      "f_frsize": 4096})())


def test_imagenet_evaluation_batches_in_flight_stay_within_2_gib(monkeypatch):
    from shattering.data.image_folder import SHM_CAP, loader_sizes, shm_budget

    _fake_shm(monkeypatch, 64 * 1024**3)  # a roomy /dev/shm: the fixed cap binds
    budget = shm_budget()
    assert budget == SHM_CAP == 2 * 1024**3
    sizes = loader_sizes(299, 128, 1024, 8, budget)  # Inception V3 at 299 px, 8 decoding workers
    assert (sizes.workers, sizes.prefetch, sizes.eval_batch_size) == (8, 4, 250)
    assert sizes.workers * sizes.prefetch * sizes.eval_batch_size * 3 * 299 * 299 <= budget  # not 8.8 GB


def test_a_small_dev_shm_drops_workers_and_cuts_the_evaluation_batch(monkeypatch):
    from shattering.data.image_folder import loader_sizes, shm_budget

    _fake_shm(monkeypatch, 256 * 1024**2)  # 256 MiB free: the budget is half of it
    budget = shm_budget()
    assert budget == 128 * 1024**2
    sizes = loader_sizes(299, 128, 1024, 8, budget)
    image = 3 * 299 * 299
    assert sizes.workers == 3 and sizes.prefetch == 1 and sizes.eval_batch_size == 128
    assert sizes.workers * sizes.prefetch * max(128, sizes.eval_batch_size) * image <= budget
    assert loader_sizes(299, 128, 1024, 0, budget).eval_batch_size == 1024  # no workers: nothing in /dev/shm


@pytest.mark.filterwarnings("ignore:This DataLoader will create")  # built, never iterated
def test_the_stream_loader_takes_the_sizes(tmp_path, monkeypatch):
    from shattering.data import image_folder

    images = type("Images", (torch.utils.data.Dataset,), {"size": 299, "__len__": lambda self: 0})()
    loader, _, sizes = image_folder.make_loader(images, 8, False, 128, 1024, budget=2 * 1024**3)
    assert (loader.num_workers, loader.prefetch_factor, sizes.eval_batch_size) == (8, 4, 250)


# -- 6. the CUDA fast paths: fused SGD, cudnn.benchmark, no host sync per step -------------------------


@pytest.mark.parametrize("name, cls", [("sgd", "SGD"), ("nesterov", "SGD"), ("adam", "Adam"), ("adamw", "AdamW")])
def test_the_optimizer_is_fused_on_cuda_and_pytorchs_default_on_the_cpu(monkeypatch, name, cls):
    from shattering.devices import optimizer_options
    from shattering.optimizers import model_groups, run_optimizer

    assert optimizer_options(torch.device("cuda", 1)) == {"fused": True}
    assert optimizer_options(torch.device("cpu")) == {}
    made = []
    monkeypatch.setattr(torch.optim, cls, lambda groups, **kw: made.append(kw))
    model = torch.nn.Linear(3, 2)
    cfg = RunConfig(**TINY, optimizer=name).resolved()
    run_optimizer(cfg, model_groups(model, 0.0), torch.device("cuda"))
    run_optimizer(cfg, model_groups(model, 0.0), torch.device("cpu"))
    assert made[0].get("fused") is True and "fused" not in made[1]


def test_cudnn_benchmark_is_on_for_cuda_only(monkeypatch):
    from shattering.devices import prepare_device

    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)  # restored after the test
    prepare_device(torch.device("cpu"))
    assert torch.backends.cudnn.benchmark is False
    prepare_device(torch.device("cuda", 0))
    assert torch.backends.cudnn.benchmark is True


class _HostReads:
    """Counts what copies a tensor's value to the host (a GPU sync): .item(), float(), .tolist()."""

    def __init__(self, monkeypatch):
        self.count = 0
        for name in ("item", "__float__", "tolist"):
            original = getattr(torch.Tensor, name)
            monkeypatch.setattr(torch.Tensor, name, self._counted(original))

    def _counted(self, original):
        def read(tensor, *args):
            self.count += 1
            return original(tensor, *args)
        return read


def test_the_epoch_loop_reads_the_loss_only_at_log_points(tmp_path, monkeypatch):
    cfg = RunConfig(**TINY | {"batch_size": 8, "log_every": 4}, out=str(tmp_path)).resolved()
    trainer = InMemoryTrainer(cfg, shattering.make_data(cfg), RunRecord(cfg.run_dir()), False)
    reads = _HostReads(monkeypatch)
    rows = trainer._train_epoch(0.01).rows
    # 8 steps, one read per log point, and one at the epoch's end (the running accuracy and loss, counted on the
    # device)
    assert trainer.book.steps == 8 and len(rows) == 2 and reads.count == 3


def test_the_packed_epoch_reads_the_losses_only_at_log_points(tmp_path, monkeypatch):
    from shattering.train.packed import PackedMLP, open_member, train_epoch

    members = []
    for seed in range(2):
        cfg = RunConfig(**TINY | {"batch_size": 8, "log_every": 4, "seed": seed}, out=str(tmp_path)).resolved()
        record = RunRecord(cfg.run_dir())
        record.create()
        members.append(open_member(cfg, shattering.make_data(cfg), record))
    packed = PackedMLP([m.model for m in members])
    optimizer = torch.optim.SGD(packed.parameters(), lr=0.01, momentum=0.9)
    reads = _HostReads(monkeypatch)
    rows = train_epoch(packed, optimizer, members, members[0].tensors["x_train"].flatten(1), 0.01).rows
    # one read of all K losses per log point, and one of every member's running numbers at the epoch's end
    assert [len(r) for r in rows] == [2, 2] and reads.count == 3


def test_a_checkpoint_written_on_a_gpu_resumes_unfused_on_the_cpu(tmp_path):
    trainer = _trainer(tmp_path)
    state = trainer.state()
    for group in state["optimizer"]["param_groups"]:
        group["fused"] = True  # as a CUDA run's optimizer saves it
    trainer.restore(state)
    assert [group["fused"] for group in trainer.optimizer.param_groups] == [None, None]
