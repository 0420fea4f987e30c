"""SchNetPack's SchNet trained for a few epochs on the molecules ``benchmarks/schnet.py`` wrote.

Run by ``benchmarks/schnet.py --schnetpack-python PATH`` in that interpreter, in a process of
its own: SchNetPack 2.1 pins sympy <= 1.12 and imports names that torch 2.13 no longer has,
so it lives in a separate virtual environment. Imports numpy, torch and schnetpack only.

Input: an ``.npz`` with ``positions`` (n_total, 3) in Å, ``atomic_numbers`` (n_total,),
``counts`` (n_molecules,) atoms per molecule and ``y`` (n_molecules,), the target. The
network has the sizes given on the command line: ``spk.representation.SchNet`` (Gaussian
distance expansion, cosine cutoff) and an ``spk.atomistic.Atomwise`` sum readout (shifted
softplus) in an ``spk.model.NeuralNetworkPotential`` with ``spk.atomistic.PairwiseDistances``.
Each molecule's neighbour list is built once, by SchNetPack's ``ASENeighborList`` transform,
before any epoch, so the epochs time the network, the collation of batches and Adam only.
The target is standardised first as SchNetModel does it (least-squares offsets per element,
then divided by the spread per atom), so both networks learn the same residual.

Output: one JSON line on stdout with the versions, threads, parameter count, the seconds of
every epoch (the first is a warm-up) and their mean training losses.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import time

import numpy as np
import schnetpack as spk
import schnetpack.properties as props
import torch


def standardised_target(atomic_numbers: np.ndarray, counts: np.ndarray, y: np.ndarray):
    """``y`` less least-squares offsets per element, divided by the spread per atom."""
    molecule = np.repeat(np.arange(len(counts)), counts)
    design = np.zeros((len(counts), 119))
    np.add.at(design, (molecule, atomic_numbers), 1.0)
    present = design.any(axis=0)
    a = design[:, present]
    offsets = np.linalg.solve(a.T @ a + 1e-8 * np.eye(a.shape[1]), a.T @ y)
    residual = y - a @ offsets
    return residual / (residual / counts).std()


def samples(data: dict, cutoff: float) -> tuple[list[dict], float]:
    """One SchNetPack input dictionary per molecule with its neighbour list; seconds spent."""
    neighbours = spk.transform.ASENeighborList(cutoff=cutoff)
    cast = spk.transform.CastTo32()
    target = standardised_target(data["atomic_numbers"], data["counts"], data["y"])
    starts = np.concatenate([[0], np.cumsum(data["counts"])])
    start = time.perf_counter()
    out = []
    for index, (lo, hi) in enumerate(itertools.pairwise(starts)):
        inputs = {
            props.idx: torch.tensor([index]),
            props.Z: torch.as_tensor(data["atomic_numbers"][lo:hi], dtype=torch.long),
            props.R: torch.as_tensor(data["positions"][lo:hi], dtype=torch.float64),
            props.cell: torch.zeros(1, 3, 3, dtype=torch.float64),
            props.pbc: torch.zeros(1, 3, dtype=torch.bool),
            props.n_atoms: torch.tensor([hi - lo]),
            # Not "y": the model writes its prediction into the batch under its output key.
            "target": torch.tensor([target[index]], dtype=torch.float64),
        }
        out.append(cast(neighbours(inputs)))
    return out, time.perf_counter() - start


def network(args: argparse.Namespace) -> torch.nn.Module:
    """SchNetPack's SchNet with the sizes asked for and a summed atom-wise readout."""
    representation = spk.representation.SchNet(
        n_atom_basis=args.n_atom_basis,
        n_interactions=args.n_interactions,
        radial_basis=spk.nn.GaussianRBF(n_rbf=args.n_rbf, cutoff=args.cutoff),
        cutoff_fn=spk.nn.CosineCutoff(args.cutoff),
        n_filters=args.n_filters,
    )
    return spk.model.NeuralNetworkPotential(
        representation=representation,
        input_modules=[spk.atomistic.PairwiseDistances()],
        # SchNetModel's readout: n_atom_basis -> n_atom_basis // 2 -> 1, shifted softplus.
        output_modules=[
            spk.atomistic.Atomwise(
                n_in=args.n_atom_basis, activation=spk.nn.shifted_softplus, output_key="y"
            )
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help=".npz written by benchmarks/schnet.py")
    for name in ("n_atom_basis", "n_filters", "n_interactions", "n_rbf", "batch_size"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, required=True)
    parser.add_argument("--cutoff", type=float, required=True)
    parser.add_argument("--learning-rate", type=float, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--epochs", type=int, required=True, help="timed, after one warm-up")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    with np.load(args.data, allow_pickle=False) as archive:
        data = {key: archive[key] for key in archive.files}
    molecules, neighbour_seconds = samples(data, args.cutoff)
    model = network(args)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    # SchNetPack's own loader: a DataLoader with its collate function, which concatenates
    # the molecules and shifts their neighbour indices.
    loader = spk.data.AtomsLoader(
        molecules,
        batch_size=args.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(args.seed),
    )
    seconds, losses = [], []
    for _ in range(1 + args.epochs):
        total, batches = 0.0, 0
        start = time.perf_counter()
        for batch in loader:
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model(batch)["y"], batch["target"])
            loss.backward()
            optimizer.step()
            total, batches = total + loss.item(), batches + 1
        seconds.append(time.perf_counter() - start)
        losses.append(total / batches)
    pairs = sum(len(m[props.idx_i]) for m in molecules)
    report = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "schnetpack": getattr(spk, "__version__", "unknown"),
        "threads": torch.get_num_threads(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "molecules": len(molecules),
        "directed_pairs": pairs,
        "neighbour_list_seconds": neighbour_seconds,
        "epoch_seconds": seconds,
        "epoch_losses": losses,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
