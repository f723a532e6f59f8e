"""Chapter 11, what self-attention lacks against a GNN: the structure it must be given, and the cost
of message passing.

The tasks write the two structural encodings of graph transformers (Laplacian eigenvectors,
Dwivedi & Bresson 2020; shortest-path distances, Ying et al. 2021), one message-passing layer
with ``index_add_`` and its FLOP count. The references are written out here with torch (an
eigendecomposition, breadth-first search by boolean frontiers, ``index_add``);
``message_passing_flops`` may not call the package's
:func:`selfattn_course.costs.message_passing_flops`.

Conventions (the chapter's): a graph of ``n`` nodes is an ``(n, n)`` adjacency matrix, symmetric
for the undirected graphs of tasks 1 and 2, or an ``(E, 2)`` edge list of (source, target) rows,
a message going from the source to the target. A multiply-add counts as 2 FLOPs.

Eigenvectors have no sign of their own (``u`` and ``-u`` are both eigenvectors), so task 1 is
compared through the projectors ``u uᵀ`` of its columns, which every sign gives alike; its
hidden graphs have distinct eigenvalues, so each projector is unique.
"""

from __future__ import annotations

import torch

from selfattn_course import costs
from selfattn_course.grading.spec import (
    Case,
    FunctionTask,
    Mistake,
    Property,
    over_devices,
    over_devices_only,
)
from selfattn_course.grading.spec import cases as C
from selfattn_course.grading.spec.calls import column_projectors, returns_number
from selfattn_course.grading.spec.cases import plain_numbers
from selfattn_course.grading.spec.task import default_tolerances


def _undirected(pairs: list[tuple[int, int]], n: int, *, dtype=torch.float64, device="cpu"):
    """``(n, n)`` symmetric adjacency of the undirected edges ``pairs``, 1 (or True) per edge."""
    adjacency = torch.zeros(n, n, dtype=torch.float64)
    for i, j in pairs:
        adjacency[i, j] = adjacency[j, i] = 1.0
    return adjacency.to(dtype=dtype, device=device)


def _relabelled(adjacency: torch.Tensor, *, seed: int) -> torch.Tensor:
    """The same graph with its nodes numbered in a random order (seeded per grading run)."""
    order = torch.randperm(adjacency.shape[0], generator=C.seeded_generator(seed))
    order = order.to(adjacency.device)
    return adjacency[order][:, order]


def path_graph(n: int) -> list[tuple[int, int]]:
    """Edges of the path 0 - 1 - ... - (n-1)."""
    return [(i, i + 1) for i in range(n - 1)]


#: Connected graphs whose normalized Laplacians have distinct eigenvalues (tests/tasks/test_ch11.py
#: checks the gaps), so each eigenvector is unique up to its sign.
CLIQUE_WITH_TAIL = [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3), (3, 4), (4, 5), (5, 6), (2, 5)]
TREE = [(0, 1), (0, 2), (1, 3), (1, 4), (4, 5), (2, 6), (6, 7), (7, 8)]
CHORDED_PATH = path_graph(10) + [(0, 4), (2, 7), (5, 9)]


# --- task 1: laplacian_pe -------------------------------------------------------------------------


def _normalized_laplacian(adjacency: torch.Tensor) -> torch.Tensor:
    """``I - D^{-1/2} A D^{-1/2}`` of an ``(n, n)`` adjacency with no isolated node."""
    scale = adjacency.sum(dim=-1).rsqrt()
    identity = torch.eye(adjacency.shape[-1], dtype=adjacency.dtype, device=adjacency.device)
    return identity - scale[:, None] * adjacency * scale[None, :]


def _all_vectors(adjacency: torch.Tensor) -> torch.Tensor:
    """``(n, n)``: every unit eigenvector of the normalized Laplacian as a column, eigenvalues
    ascending."""
    return torch.linalg.eigh(_normalized_laplacian(adjacency)).eigenvectors


def laplacian_pe(adjacency: torch.Tensor, k: int) -> torch.Tensor:
    """``(n, n)`` symmetric adjacency, no isolated node -> ``(n, k)``: unit eigenvectors of the
    normalized Laplacian ``L = I - D^{-1/2} A D^{-1/2}`` for its 2nd to (k+1)-th smallest
    eigenvalues, as columns (the first, eigenvalue 0, carries only the degrees)."""
    return _all_vectors(adjacency)[:, 1 : k + 1]


def _unit_columns(projectors, _inputs) -> bool:
    """The trace of ``u uᵀ`` is ``|u|²``: 1 for a unit vector."""
    traces = projectors.diagonal(dim1=-2, dim2=-1).sum(-1).double()
    tolerance = 1e-3 if projectors.dtype == torch.float32 else 1e-8
    return bool(torch.allclose(traces, torch.ones_like(traces), atol=tolerance))


def _laplacian_pe_hidden(dtype, device) -> list[Case]:
    def graph(pairs, n, k, seed):
        adjacency = _relabelled(_undirected(pairs, n, dtype=dtype, device=device), seed=seed)
        return {"adjacency": adjacency, "k": k}

    return [
        Case("a path of 8 nodes, k = 3", graph(path_graph(8), 8, 3, 60)),
        Case(
            "a 4-clique with a tail of 3 nodes and a chord, k = 4",
            graph(CLIQUE_WITH_TAIL, 7, 4, 61),
        ),
        Case("a tree of 9 nodes, k = 2", graph(TREE, 9, 2, 62)),
        Case("a path with chords, 10 nodes, k = 5", graph(CHORDED_PATH, 10, 5, 63)),
        Case("two nodes and one edge, k = 1", graph([(0, 1)], 2, 1, 64)),
        Case("every eigenvector but the first: path of 5, k = 4", graph(path_graph(5), 5, 4, 65)),
    ]


LAPLACIAN_PE = FunctionTask(
    id="ch11.laplacian_pe",
    title="Laplacian eigenvector encodings",
    points=3,
    statement=r"""
        Write `laplacian_pe(adjacency, k)`: the Laplacian positional encoding of a graph
        transformer. `adjacency` is the `(n, n)` symmetric matrix of an undirected graph (1.0
        where an edge is, float32 or float64), with no isolated node. Build the normalized
        Laplacian $L = I - D^{-1/2} A D^{-1/2}$ ($D$ the diagonal matrix of the degrees), and
        return the `(n, k)` matrix whose columns are its unit eigenvectors for the 2nd to the
        $(k+1)$-th smallest eigenvalues, in ascending order (skip the first: its eigenvalue is 0
        and its eigenvector, $D^{1/2}\mathbf{1}$ normalized, says nothing but the degrees). Keep
        the dtype and device of `adjacency`. An eigenvector's sign is arbitrary, so the test
        compares $u u^\top$ for each column $u$: either sign passes.
        """,
    reference=laplacian_pe,
    visible_cases=lambda: [
        Case(
            "a path of 4 nodes, k = 2",
            {"adjacency": _undirected(path_graph(4), 4, dtype=torch.float32), "k": 2},
        ),
        Case(
            "a 4-clique with a tail of 3 nodes and a chord, float64, k = 3",
            {"adjacency": _undirected(CLIQUE_WITH_TAIL, 7), "k": 3},
        ),
    ],
    hidden_cases=over_devices(_laplacian_pe_hidden),
    properties=(Property("each column is a unit vector", _unit_columns),),
    mistakes=(
        Mistake(
            "you use the combinatorial Laplacian D - A; the task asks for the normalized one, "
            "I - D^(-1/2) A D^(-1/2)",
            source="""
                def laplacian_pe(adjacency, k):
                    laplacian = torch.diag(adjacency.sum(dim=-1)) - adjacency
                    _, vectors = torch.linalg.eigh(laplacian)
                    return vectors[:, 1 : k + 1]
                """,
        ),
        Mistake(
            "you kept the first eigenvector (eigenvalue 0, the degrees only): take columns 1 to k",
            lambda adjacency, k: _all_vectors(adjacency)[:, :k],
        ),
        Mistake(
            "you took rows of eigh's result; its eigenvectors are the columns",
            lambda adjacency, k: _all_vectors(adjacency)[1 : k + 1].T,
        ),
        Mistake(
            "you took the largest eigenvalues; the smooth encodings are those of the smallest",
            lambda adjacency, k: _all_vectors(adjacency)[:, -k:],
        ),
    ),
    tolerances={**default_tolerances(), torch.float32: (1e-3, 1e-4)},  # eigh in float32
    runner=column_projectors,
)


# --- task 2: shortest_path_distances --------------------------------------------------------------


def shortest_path_distances(adjacency: torch.Tensor) -> torch.Tensor:
    """``(n, n)`` symmetric boolean adjacency -> ``(n, n)`` int64: the number of edges on a
    shortest path between ``i`` and ``j``, 0 on the diagonal, -1 where no path exists.

    Breadth-first search from every node at once: ``frontier[s, v]`` is True for the nodes ``v``
    first reached from ``s`` at the current hop."""
    n = adjacency.shape[-1]
    edges = adjacency.to(torch.float64)
    distances = torch.full((n, n), -1, dtype=torch.int64, device=adjacency.device)
    reached = torch.eye(n, dtype=torch.bool, device=adjacency.device)
    distances[reached] = 0
    frontier = reached
    for hop in range(1, n):
        neighbours = (frontier.to(torch.float64) @ edges) > 0
        frontier = neighbours & ~reached
        if not frontier.any():
            break
        distances[frontier] = hop
        reached |= frontier
    return distances


def _spd_hidden(device) -> list[Case]:
    def graph(pairs, n, seed):
        adjacency = _undirected(pairs, n, dtype=torch.bool, device=device)
        return {"adjacency": _relabelled(adjacency, seed=seed)}

    def random_graph(n, p, seed):
        generator = C.seeded_generator(seed)
        upper = (torch.rand(n, n, generator=generator) < p).triu(1)
        return {"adjacency": (upper | upper.T).to(device)}

    six_cycle = [(i, (i + 1) % 6) for i in range(6)]
    two_triangles = [(0, 1), (1, 2), (2, 0), (3, 4), (4, 5), (5, 3)]
    return [
        Case("a path of 9 nodes: distances up to 8", graph(path_graph(9), 9, 70)),
        Case("a 6-cycle", graph(six_cycle, 6, 71)),
        Case("two triangles: unreachable pairs", graph(two_triangles, 6, 72)),
        Case("an isolated node", graph([(0, 1), (1, 2)], 4, 73)),
        Case(
            "one node, no edge", {"adjacency": torch.zeros(1, 1, dtype=torch.bool, device=device)}
        ),
        Case("a random sparse graph of 20 nodes", random_graph(20, 0.12, 74)),
        Case("a random dense graph of 12 nodes", random_graph(12, 0.5, 75)),
    ]


SHORTEST_PATH_DISTANCES = FunctionTask(
    id="ch11.shortest_path_distances",
    title="shortest-path distances for a Graphormer bias",
    points=2,
    statement=r"""
        Graphormer adds to each attention score $s_{ij}$ a learned number $b_{\phi(i, j)}$ that
        depends on the shortest-path distance $\phi(i, j)$ between the two nodes. Write
        `shortest_path_distances(adjacency)`: `adjacency` is the `(n, n)` symmetric boolean
        matrix of an undirected graph (True where an edge is). Return the `(n, n)` `int64`
        tensor, on the same device, of the number of edges on a shortest path from $i$ to $j$:
        0 on the diagonal, and $-1$ where $j$ cannot be reached from $i$. Use breadth-first
        search (from every node, or from all of them at once with the adjacency).
        """,
    reference=shortest_path_distances,
    visible_cases=lambda: [
        Case(
            "by hand: the path 0 - 1 - 2 gives [[0, 1, 2], [1, 0, 1], [2, 1, 0]]",
            {"adjacency": _undirected(path_graph(3), 3, dtype=torch.bool)},
        ),
        Case(
            "an edge 0 - 1 and a lone node 2: distance -1 to it",
            {"adjacency": _undirected([(0, 1)], 3, dtype=torch.bool)},
        ),
        Case(
            "a 4-clique with a tail of 3 nodes and a chord",
            {"adjacency": _undirected(CLIQUE_WITH_TAIL, 7, dtype=torch.bool)},
        ),
    ],
    hidden_cases=over_devices_only(_spd_hidden),
    properties=(
        Property(
            "distances are symmetric (the graph is undirected)",
            lambda distances, _inputs: bool((distances == distances.T).all()),
        ),
        Property(
            "an edge is a distance of 1",
            lambda distances, inputs: bool(
                (distances[inputs["adjacency"].to(distances.device)] == 1).all()
            ),
        ),
    ),
    mistakes=(
        Mistake(
            "unreachable pairs are left at 0; they must be -1 (0 is the distance of a node to "
            "itself)",
            source="""
                def shortest_path_distances(adjacency):
                    n = adjacency.shape[0]
                    distances = torch.zeros(n, n, dtype=torch.int64, device=adjacency.device)
                    seen = torch.eye(n, dtype=torch.bool, device=adjacency.device)
                    frontier = seen
                    for hop in range(1, n):
                        frontier = ((frontier.double() @ adjacency.double()) > 0) & ~seen
                        distances[frontier] = hop
                        seen |= frontier
                    return distances
                """,
        ),
        Mistake(
            "the search starts with one hop already taken, so a node is at distance 2 from "
            "itself (there and back); start from the node itself at distance 0",
            source="""
                def shortest_path_distances(adjacency):
                    n = adjacency.shape[0]
                    a = adjacency.double()
                    distances = torch.full((n, n), -1, dtype=torch.int64, device=adjacency.device)
                    walks = a.clone()
                    for hop in range(1, n + 1):
                        new = (walks > 0) & (distances < 0)
                        distances[new] = hop
                        walks = walks @ a
                    return distances
                """,
        ),
        Mistake(
            "you count the nodes on the path rather than its edges: each distance is 1 too large",
            lambda adjacency: torch.where(
                shortest_path_distances(adjacency) >= 0,
                shortest_path_distances(adjacency) + 1,
                -1,
            ),
        ),
    ),
)


# --- task 3: message_passing ----------------------------------------------------------------------


def message_passing(x: torch.Tensor, edges: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``x (n, d_in)``, ``edges (E, 2)`` of (source, target), ``weight (d_in, d_out)`` ->
    ``(n, d_out)``: ``out[i] = sum over edges (j, i) of x[j] @ weight``, 0 for a node with no
    incoming edge; O(|E|·d_out) for the sum."""
    messages = (x @ weight)[edges[:, 0]]  # (E, d_out): one message per edge, from its source
    out = torch.zeros(x.shape[0], weight.shape[1], dtype=x.dtype, device=x.device)
    return out.index_add_(0, edges[:, 1], messages)


def _messages_conserved(out, inputs) -> bool:
    """Every edge delivers one message ``x[source] @ W``: the outputs add up to their sum."""
    x, edges, weight = inputs["x"], inputs["edges"], inputs["weight"]
    if out.shape[-1] != weight.shape[-1]:
        return False
    total = (x.double() @ weight.double())[edges[:, 0]].sum(0)
    tolerance = 1e-3 * (1 + total.abs().max()) if x.dtype == torch.float32 else 1e-8
    return bool(torch.allclose(out.double().sum(0), total, atol=float(tolerance)))


def _graph_inputs(n, num_edges, d_in, d_out, *, seed, dtype, device="cpu"):
    """Random node features, random directed edges (repeats allowed) and a weight matrix."""
    generator = C.seeded_generator(seed)
    edges = torch.randint(0, n, (num_edges, 2), generator=generator)
    return {
        "x": C.randn((n, d_in), seed=seed + 1, dtype=dtype, device=device),
        "edges": edges.to(device),
        "weight": C.randn((d_in, d_out), seed=seed + 2, dtype=dtype, device=device),
    }


def _message_passing_hidden(dtype, device) -> list[Case]:
    def fixed(pairs, n, d_in, d_out, seed):
        inputs = _graph_inputs(n, 1, d_in, d_out, seed=seed, dtype=dtype, device=device)
        edges = torch.tensor(pairs, dtype=torch.int64).reshape(-1, 2)
        return {**inputs, "edges": edges.to(device)}

    return [
        Case(
            "a random graph: 30 nodes, 120 edges, 8 -> 5",
            _graph_inputs(30, 120, 8, 5, seed=80, dtype=dtype, device=device),
        ),
        Case(
            "a directed path 0 -> 1 -> 2 -> 3: node 0 receives nothing",
            fixed([(0, 1), (1, 2), (2, 3)], 4, 3, 3, 81),
        ),
        Case("a star: 5 leaves send to node 0", fixed([(j, 0) for j in range(1, 6)], 6, 4, 2, 82)),
        Case("the same edge twice counts twice", fixed([(1, 0), (1, 0), (2, 1)], 3, 2, 2, 83)),
        Case("no edges at all: every output is 0", fixed([], 5, 3, 4, 84)),
        Case("self loops", fixed([(0, 0), (1, 1), (0, 1)], 2, 3, 3, 85)),
    ]


MESSAGE_PASSING = FunctionTask(
    id="ch11.message_passing",
    title="message passing with index_add_",
    points=3,
    statement=r"""
        Write `message_passing(x, edges, weight)`, one sum-aggregation layer of a GNN:
        $h_i = \sum_{(j, i) \in E} x_j W$. `x` is `(n, d_in)`, `weight` is `(d_in, d_out)`,
        `edges` is an `(E, 2)` `int64` tensor whose rows are (source, target): the message
        $x_j W$ goes from node $j$ to node $i$. An edge listed twice delivers its message twice;
        a node with no incoming edge gets 0. Do not build an `(n, n)` matrix: gather one message
        per edge and add the messages into their targets with `Tensor.index_add_`, so that the
        work grows with $|E|$, not $n^2$. Return `(n, d_out)` in the dtype and on the device of
        `x`.
        """,
    reference=message_passing,
    visible_cases=lambda: [
        Case(
            "by hand: x = [[1], [2], [3]], W = [[1]], edges 0 -> 2 and 1 -> 2 give [[0], [0], [3]]",
            {
                "x": torch.tensor([[1.0], [2.0], [3.0]]),
                "edges": torch.tensor([[0, 2], [1, 2]]),
                "weight": torch.tensor([[1.0]]),
            },
        ),
        Case(
            "10 nodes, 25 random edges, 4 -> 3",
            _graph_inputs(10, 25, 4, 3, seed=8, dtype=torch.float32),
        ),
    ],
    hidden_cases=over_devices(_message_passing_hidden),
    properties=(
        Property(
            "the outputs add up to the sum of all messages, one x[source] @ weight per edge",
            _messages_conserved,
        ),
    ),
    mistakes=(
        Mistake(
            "the messages go the wrong way: edges[:, 0] is the source, edges[:, 1] the target "
            "that receives",
            source="""
                def message_passing(x, edges, weight):
                    messages = (x @ weight)[edges[:, 1]]
                    out = torch.zeros(x.shape[0], weight.shape[1], dtype=x.dtype, device=x.device)
                    return out.index_add_(0, edges[:, 0], messages)
                """,
        ),
        Mistake(
            "you assigned the messages (out[targets] = messages): a node with several incoming "
            "edges keeps one of them; add them with index_add_",
            source="""
                def message_passing(x, edges, weight):
                    messages = (x @ weight)[edges[:, 0]]
                    out = torch.zeros(x.shape[0], weight.shape[1], dtype=x.dtype, device=x.device)
                    out[edges[:, 1]] = messages
                    return out
                """,
        ),
        Mistake(
            "you averaged the messages of each node; this layer sums them",
            lambda x, edges, weight: (
                message_passing(x, edges, weight)
                / torch.bincount(edges[:, 1], minlength=x.shape[0])
                .clamp_min(1)[:, None]
                .to(x.dtype)
            ),
        ),
    ),
)


# --- task 4: message_passing_flops ----------------------------------------------------------------


def message_passing_flops(num_nodes: int, num_edges: int, d: int) -> int:
    """``2|E|d + 2nd²``: a ``(d, d)`` transform per node, a weighted sum of width ``d`` per edge
    (:func:`selfattn_course.costs.message_passing_flops`)."""
    return costs.message_passing_flops(num_nodes, num_edges, d)


MESSAGE_PASSING_FLOPS = FunctionTask(
    id="ch11.message_passing_flops",
    title="the FLOPs of a message-passing layer",
    points=2,
    statement=r"""
        A GCN- or GAT-style layer of width $d$ computes $h'_i = \sum_{(j, i) \in E} a_{ij}\,
        (W h_j)$ on a graph of $n$ nodes and $|E|$ directed edges: it transforms every node once
        with the $d \times d$ matrix $W$, then each edge adds its message, scaled by the weight
        $a_{ij}$, into its target. Write `message_passing_flops(num_nodes, num_edges, d)`: the
        FLOPs of that layer (a multiply-add counts as 2; the weights $a_{ij}$ are given).
        Compare it with a dense attention layer over the same nodes, $8nd^2 + 4n^2d$, for a
        sparse and a dense graph.
        """,
    reference=message_passing_flops,
    visible_cases=lambda: [
        plain_numbers(
            "by hand: n = 3, |E| = 4, d = 2 gives 2·4·2 + 2·3·4 = 40",
            num_nodes=3,
            num_edges=4,
            d=2,
        ),
        plain_numbers(
            "a sparse graph: n = 1000, |E| = 10000, d = 64", num_nodes=1000, num_edges=10000, d=64
        ),
    ],
    hidden_cases=lambda _devices: [
        plain_numbers("no edges: the transforms alone", num_nodes=50, num_edges=0, d=16),
        plain_numbers(
            "the complete graph, self loops: |E| = n²", num_nodes=300, num_edges=90000, d=32
        ),
        plain_numbers("one node, one self loop, d = 1", num_nodes=1, num_edges=1, d=1),
        plain_numbers(
            "a large sparse graph: 2.4 million nodes, 62 million edges, d = 128",
            num_nodes=2_449_029,
            num_edges=61_859_140,
            d=128,
        ),
        plain_numbers(
            "wide features: n = 7, |E| = 12, d = 4096", num_nodes=7, num_edges=12, d=4096
        ),
    ],
    mistakes=(
        Mistake(
            "you used the Q&A's O(n·k) with k = n, as if every node received from every node; "
            "the aggregation touches the |E| edges only",
            source="""
                def message_passing_flops(num_nodes, num_edges, d):
                    return 2 * num_nodes * num_nodes * d + 2 * num_nodes * d * d
                """,
        ),
        Mistake(
            "you counted a multiply-add as 1 FLOP; it is 2",
            source="""
                def message_passing_flops(num_nodes, num_edges, d):
                    return num_edges * d + num_nodes * d * d
                """,
        ),
        Mistake(
            "you transformed each message on its edge (2|E|d² ); W h_j is computed once per node "
            "and reused by all of its edges",
            lambda num_nodes, num_edges, d: 2 * num_edges * d**2 + 2 * num_edges * d,
        ),
        Mistake(
            "you left out the transform W h_j, 2nd²",
            lambda num_nodes, num_edges, d: 2 * num_edges * d,
        ),
    ),
    forbidden=("selfattn_course.costs.message_passing_flops",),
    runner=returns_number,
)


TASKS = [LAPLACIAN_PE, SHORTEST_PATH_DISTANCES, MESSAGE_PASSING, MESSAGE_PASSING_FLOPS]
