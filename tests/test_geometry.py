"""Salts, mixtures and clashes: no geometry with overlapping atoms passes silently."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import rdDistGeom

from dc_invariant import ConformerFeaturizer, geometry
from dc_invariant.geometry import (
    CLASH_FRACTION,
    FRAGMENT_GAP,
    clashing_molecules,
    describe_clash,
    find_clash,
    place_fragments,
)

# A metal complex written dot-disconnected, a sodium salt, a sulfate salt, a hydrochloride,
# a hydrate with a metal ion, a chloride, a zwitterion (one fragment) and plain 'N.N'.
MULTI = [
    "N.N.Cl[Pt]Cl",
    "CC(=O)[O-].[Na+]",
    "NC1=NC(=C2N=NNC2=N1)N.OS(O)(=O)=O",
    "CCN.Cl",
    "O.O.O.O.O.[Cu+2].[O-]S(=O)(=O)[O-]",
    "C[NH3+].[Cl-]",
    "N.N",
]
ZWITTERION = "[NH3+]CC(=O)[O-]"


def _fragments_of(smiles: str) -> list[list[int]]:
    mol = Chem.AddHs(Chem.MolFromSmiles(Chem.MolToSmiles(Chem.MolFromSmiles(smiles))))
    return [list(f) for f in Chem.GetMolFrags(mol)]


def _closest_between_fragments(positions: np.ndarray, fragments: list[list[int]]) -> float:
    label = np.empty(len(positions), dtype=int)
    for k, atoms in enumerate(fragments):
        label[atoms] = k
    d = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
    return float(d[label[:, None] != label[None, :]].min())


@pytest.mark.parametrize("force_field", [None, "UFF"])
def test_all_fragments_are_kept_and_none_overlaps(force_field):
    # UFF has no parameters for the square-planar Pt of the complex: test it without.
    molecules = [*MULTI, ZWITTERION] if force_field is None else [*MULTI[1:], ZWITTERION]
    featurizer = ConformerFeaturizer(force_field=force_field)
    out = featurizer.featurize(molecules, log_failures=False)
    assert featurizer.failures == []
    for smiles, conformer in zip(molecules, out):
        expected = Chem.AddHs(Chem.MolFromSmiles(smiles)).GetNumAtoms()
        assert conformer.n_atoms == expected, smiles
        assert find_clash(conformer.atomic_numbers, conformer.positions) is None, smiles
        fragments = _fragments_of(smiles)
        if len(fragments) > 1:
            closest = _closest_between_fragments(conformer.positions, fragments)
            # Laid out at the gap; a force field with inter-fragment forces may pull ion
            # pairs into contact, but never into each other.
            floor = FRAGMENT_GAP - 1e-6 if force_field is None else 1.5
            assert closest >= floor, (smiles, closest)


def test_mmff_relaxation_keeps_fragments_apart():
    out = ConformerFeaturizer(force_field="MMFF").featurize(["CC(=O)[O-].[Na+]"])
    conformer = out[0]
    closest = _closest_between_fragments(conformer.positions, _fragments_of("CC(=O)[O-].[Na+]"))
    assert 1.5 < closest < 6.0  # an ion pair in contact, not overlapping, not drifted off


def test_largest_keeps_the_drug_not_the_counter_ion():
    featurizer = ConformerFeaturizer(fragments="largest")
    amine, acetate, purine = featurizer.featurize(
        ["CCN.Cl", "CC(=O)[O-].[Na+]", "NC1=NC(=C2N=NNC2=N1)N.OS(O)(=O)=O"]
    )
    assert sorted(amine.atomic_numbers.tolist()) == [1] * 7 + [6, 6, 7]
    assert 11 not in acetate.atomic_numbers and acetate.n_atoms == 7
    assert 16 not in purine.atomic_numbers
    assert (purine.atomic_numbers == 7).sum() == 7
    # The molecule featurized, which reports show and draw; the input stays the dataset's id.
    assert amine.smiles == "CCN"


def test_largest_keeps_a_given_geometry_unchanged():
    mol = Chem.AddHs(Chem.MolFromSmiles("CCN.Cl"))
    rdDistGeom.EmbedMolecule(mol, randomSeed=3)
    given = mol.GetConformer().GetPositions()
    conformer = ConformerFeaturizer(fragments="largest").featurize([mol])[0]
    assert conformer.n_atoms == 10
    # Every kept atom sits exactly where it was given.
    d = np.linalg.norm(conformer.positions[:, None] - given[None], axis=-1)
    assert (d.min(axis=1) == 0).all()


def test_error_names_the_fragments(caplog):
    featurizer = ConformerFeaturizer(fragments="error")
    out = featurizer.featurize(["CCN.Cl", ZWITTERION])
    assert isinstance(out[0], np.ndarray) and out[0].size == 0
    assert out[1].n_atoms == 10  # one fragment, charged or not, is fine
    ((index, _, reason),) = featurizer.failures
    assert index == 0
    assert "2 disconnected fragments" in reason and "'Cl'" in reason and "largest" in reason


def test_fragments_setting_is_validated_and_named_in_str():
    with pytest.raises(ValueError, match="fragments must be one of"):
        ConformerFeaturizer(fragments="biggest")
    assert "fragments_largest" in str(ConformerFeaturizer(fragments="largest"))
    assert "fragments" not in str(ConformerFeaturizer())


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["all", "largest"])
def test_fragment_layout_is_identical_in_a_fresh_process(mode):
    featurizer = ConformerFeaturizer(fragments=mode, n_conformers=2)
    here = hashlib.sha256(
        b"".join(c.ensemble.tobytes() for c in featurizer.featurize(MULTI))
    ).hexdigest()
    code = textwrap.dedent(
        f"""
        import hashlib
        from dc_invariant import ConformerFeaturizer
        out = ConformerFeaturizer(fragments={mode!r}, n_conformers=2).featurize({MULTI!r})
        print(hashlib.sha256(b"".join(c.ensemble.tobytes() for c in out)).hexdigest())
        """
    )
    there = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()[-1]
    assert here == there


def test_an_embedding_that_still_overlaps_is_a_failure_not_a_success(monkeypatch):
    # Control: without the layout the clash check must fire on both attempts.
    import dc_invariant.embedding as embedding

    monkeypatch.setattr(embedding, "place_fragments", lambda positions, fragments: positions)
    featurizer = ConformerFeaturizer()
    out = featurizer.featurize(["N.N"], log_failures=False)
    assert isinstance(out[0], np.ndarray)
    ((_, _, reason),) = featurizer.failures
    assert "overlapping atoms" in reason and "(N)" in reason


def test_a_clash_in_a_given_geometry_is_kept_and_warned_once(caplog):
    mol = Chem.AddHs(Chem.MolFromSmiles("N.N"))
    rdDistGeom.EmbedMolecule(mol, randomSeed=1)  # RDKit's own overlap: both N at one point
    featurizer = ConformerFeaturizer()
    good = Chem.AddHs(Chem.MolFromSmiles("O"))
    rdDistGeom.EmbedMolecule(good, randomSeed=1)
    out = featurizer.featurize([good, mol, mol])
    assert out[1].n_atoms == 8  # kept exactly as given
    np.testing.assert_array_equal(out[1].positions, mol.GetConformer().GetPositions())
    assert [i for i, _, _ in featurizer.clashes] == [1, 2]
    assert "(N) and" in featurizer.clashes[0][2]
    warnings = [r for r in caplog.records if "overlapping atoms" in r.getMessage()]
    assert len(warnings) == 1 and "2 given geometries" in warnings[0].getMessage()


def test_featurize_arrays_flags_clashes_too():
    featurizer = ConformerFeaturizer()
    z = [np.array([8, 1]), np.array([8, 1])]
    r = [np.array([[0.0, 0, 0], [0.97, 0, 0]]), np.array([[0.0, 0, 0], [0.1, 0, 0]])]
    featurizer.featurize_arrays(z, r, log_failures=False)
    assert [i for i, _, _ in featurizer.clashes] == [1]


@pytest.mark.slow
def test_embedding_time_limit_is_a_named_failure():
    peptide = Chem.MolToSmiles(Chem.MolFromSequence("ACDEFGHIKLMNPQRSTVWY" * 2))
    featurizer = ConformerFeaturizer(embed_timeout=1)
    out = featurizer.featurize([peptide, "CCO"], log_failures=False)
    assert isinstance(out[0], np.ndarray) and out[1].n_atoms == 9
    assert "embed_timeout=1 s" in featurizer.failures[0][2]
    with pytest.raises(ValueError, match=r"embed_timeout \(s\) == 0, must be >= 1"):
        ConformerFeaturizer(embed_timeout=0)
    with pytest.raises(TypeError, match=r"embed_timeout \(s\) must be an instance of int"):
        ConformerFeaturizer(embed_timeout=1.5)


def test_find_clash_tree_path_equals_all_pairs():
    rng = np.random.default_rng(0)
    z = rng.choice([1, 6, 7, 8], size=600)
    r = rng.uniform(0, 25, size=(600, 3))
    tree = find_clash(z, r)
    dense = geometry._DENSE_ATOMS
    try:
        geometry._DENSE_ATOMS = 10_000
        assert find_clash(z, r) == tree
    finally:
        geometry._DENSE_ATOMS = dense
    assert tree is not None  # random points this dense always clash somewhere
    i, j, distance = tree
    radii = {1: 0.31, 6: 0.76, 7: 0.71, 8: 0.66}
    assert distance < CLASH_FRACTION * (radii[z[i]] + radii[z[j]])


def test_clashing_molecules_reports_exactly_what_find_clash_finds_one_by_one():
    # Molecules of mixed sizes (the screened groups and one past _GROUPED_ATOMS), with pairs
    # pushed to just inside and just outside the clash distance, where a screen with other
    # rounding could disagree.
    rng = np.random.default_rng(7)
    numbers, geometries = [], []
    for k in range(400):
        n = int(rng.choice([1, 2, 3, 9, 18, 70]))
        z = rng.choice([1, 6, 7, 8], size=n)
        r = rng.uniform(0, 3 * n ** (1 / 3), size=(n, 3))
        if n > 1 and k % 3:
            a, b = rng.choice(n, 2, replace=False)
            limit = CLASH_FRACTION * (geometry._RADII[z[a]] + geometry._RADII[z[b]])
            r[b] = r[a] + limit * (1 + rng.choice([-1e-12, 1e-12, -0.3])) * np.array([1.0, 0, 0])
        numbers.append(z)
        geometries.append(r)
    found = clashing_molecules(numbers, geometries)
    one_by_one = {
        k: describe_clash(z, clash)
        for k, (z, r) in enumerate(zip(numbers, geometries))
        if (clash := find_clash(z, r)) is not None
    }
    assert found == one_by_one and 50 < len(found) < 400


def test_place_fragments_is_rigid_and_keeps_the_gap():
    rng = np.random.default_rng(1)
    for _ in range(50):
        sizes = rng.integers(1, 20, size=3)
        positions = rng.normal(size=(sizes.sum(), 3)) * rng.uniform(0.5, 3.0)
        bounds = np.cumsum(sizes)
        fragments = [list(range(a - n, a)) for a, n in zip(bounds, sizes)]
        moved = place_fragments(positions, fragments)
        assert _closest_between_fragments(moved, fragments) >= FRAGMENT_GAP - 1e-9
        for atoms in fragments:
            before = np.linalg.norm(positions[atoms][:, None] - positions[atoms][None], axis=-1)
            after = np.linalg.norm(moved[atoms][:, None] - moved[atoms][None], axis=-1)
            np.testing.assert_allclose(after, before, atol=1e-12)
        largest = fragments[int(np.argmax(sizes))]
        np.testing.assert_array_equal(moved[largest], positions[largest])


def test_real_multi_fragment_molecules_from_nci_never_overlap():
    import os

    from rdkit import RDConfig

    path = os.path.join(RDConfig.RDDataDir, "NCI", "first_5K.smi")
    with open(path) as handle:
        multi = [line.split()[0] for line in handle if "." in line.split()[0]][:20]
    featurizer = ConformerFeaturizer(embed_timeout=10)
    out = featurizer.featurize(multi, log_failures=False)
    done = [(s, c) for s, c in zip(multi, out) if not isinstance(c, np.ndarray)]
    assert len(done) >= 15  # raw ETKDG overlaps fragments in about 9 of 10 of these
    for smiles, conformer in done:
        assert find_clash(conformer.atomic_numbers, conformer.positions) is None, smiles
        assert conformer.n_atoms == Chem.AddHs(Chem.MolFromSmiles(smiles)).GetNumAtoms()


def test_the_audit_lists_molecules_whose_given_geometry_clashes(tmp_path):
    from dc_invariant import Conformer, audit

    def spread(r, x):
        return np.array([((r - r.mean(axis=0)) ** 2).sum()])

    good = Conformer([[0.0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]], np.eye(3), [8, 1, 1])
    bad = Conformer([[0.0, 0, 0], [0.05, 0, 0], [-0.24, 0.93, 0]], np.eye(3), [8, 1, 1])
    report = audit(spread, [good, bad], n_samples=1)
    assert report.clashes["id"].tolist() == ["1"]
    assert "atoms 0 (O) and 1 (H) are 0.05 Å apart" in report.clashes["clash"].iloc[0]
    assert "overlapping atoms in the given geometry of 1" in report.format()
    assert len(report.molecules[report.molecules["id"] == "1"])  # audited all the same
    page = tmp_path / "report.html"
    report.to_html(str(page))
    assert "Overlapping atoms in the given geometry" in page.read_text()


def test_clash_search_refuses_coordinates_that_are_not_finite():
    z = np.array([6, 6, 6])
    r = np.array([[0.0, 0, 0], [0.01, 0, 0], [np.nan, 0, 0]])  # atoms 0 and 1 clash
    with pytest.raises(ValueError, match="positions must be finite"):
        find_clash(z, r)  # a NaN ratio was the minimum, and "NaN < 1" said no clash
    with pytest.raises(ValueError, match="positions must be finite"):
        clashing_molecules([z], [r])
