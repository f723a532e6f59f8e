"""Chapter 10, self-attention and GNNs: the adjacency mask, graph attention, relabelling, GAT.

References: the package's :func:`~selfattn_course.graphs.adjacency_mask` (task 1, which the
learner writes from scratch and may not call), a graph-attention layer made of the package's
:func:`~selfattn_course.attention.scaled_dot_product_attention` and adjacency mask (task 2,
where both are allowed: the task is to use them right), the relabelling of an edge list under a
permutation of the nodes (task 3, written out here) and GAT's favourite keys (task 4, an answer
worked out from the numbers in the statement).

Edges are ``(E, 2)`` integer tensors of ``(source, target)`` pairs; the edge ``j -> i`` lets node
``i`` (the query) attend to node ``j`` (the key), so it sets ``mask[i, j]``.
"""

from __future__ import annotations

import torch

from selfattn_course.attention import scaled_dot_product_attention
from selfattn_course.grading.spec import (
    AnswerTask,
    Case,
    FunctionTask,
    Mistake,
    Property,
    over_devices,
    over_devices_only,
)
from selfattn_course.grading.spec import cases as C
from selfattn_course.grading.spec.answers import Numbers
from selfattn_course.grading.spec.provided import adjacency_mask
from selfattn_course.graphs import adjacency_mask as package_adjacency_mask
from selfattn_course.graphs import edge_attention


def _edges(pairs, device="cpu", dtype=torch.long) -> torch.Tensor:
    """``(E, 2)`` edges from a list of ``(source, target)`` pairs (an empty list: ``(0, 2)``)."""
    return torch.tensor(pairs, dtype=dtype).reshape(-1, 2).to(device)


def _random_edges(num_nodes: int, num_edges: int, *, seed: int, device="cpu") -> torch.Tensor:
    """``num_edges`` random ``(source, target)`` pairs, repeats and self-loops possible."""
    generator = C.seeded_generator(seed)
    return torch.randint(0, num_nodes, (num_edges, 2), generator=generator).to(device)


# --- task 1: adjacency_mask -----------------------------------------------------------------------


def _every_edge_is_allowed(mask, inputs) -> bool:
    edges = inputs["edges"].long()
    return bool(mask[edges[:, 1], edges[:, 0]].all())


def _undirected_is_symmetric(mask, inputs) -> bool:
    if inputs.get("directed", False):
        return True
    return bool(torch.equal(mask, mask.T))


def _mask_hidden(device) -> list[Case]:
    def graph(name, edges, n, **options):
        return Case(name, {"edges": edges, "num_nodes": n}, options)

    return [
        graph(
            "random directed graph, 9 nodes, 20 edges",
            _random_edges(9, 20, seed=20, device=device),
            9,
            directed=True,
            self_loops=False,
        ),
        graph(
            "random undirected graph with self-loops (the defaults)",
            _random_edges(9, 14, seed=21, device=device),
            9,
        ),
        graph(
            "directed, with self-loops",
            _random_edges(6, 8, seed=22, device=device),
            6,
            directed=True,
        ),
        graph(
            "undirected, no self-loops",
            _random_edges(7, 9, seed=23, device=device),
            7,
            self_loops=False,
        ),
        graph(
            "no edges at all (E = 0), directed",
            _edges([], device),
            4,
            directed=True,
            self_loops=False,
        ),
        graph("one node, no edge (defaults)", _edges([], device), 1),
        graph(
            "a repeated edge and an edge from a node to itself",
            _edges([[0, 1], [0, 1], [2, 2]], device),
            3,
            directed=True,
            self_loops=False,
        ),
        graph(
            "int32 edges, a node with no edge at all",
            _edges([[0, 1], [1, 2]], device, torch.int32),
            5,
            directed=True,
        ),
    ]


ADJACENCY_MASK = FunctionTask(
    id="ch10.adjacency_mask",
    title="the adjacency mask",
    points=3,
    statement=r"""
        Write `adjacency_mask(edges, num_nodes, directed=False, self_loops=True)`. `edges` is a
        `(E, 2)` integer tensor of `(source, target)` pairs; the edge $j \to i$ lets node $i$
        (the query) attend to node $j$ (the key). Return the `(num_nodes, num_nodes)` boolean
        mask, on the device of `edges`, with `mask[i, j]` True exactly when:

        - there is an edge $j \to i$;
        - or, when `directed` is False, an edge $i \to j$ (each edge counts both ways);
        - or, when `self_loops` is True, $i = j$.

        Do not call the package's `selfattn_course.graphs.adjacency_mask`.
        """,
    reference=adjacency_mask,
    visible_cases=lambda: [
        Case(
            "by hand: edge 0 -> 1, directed, no self-loops: only mask[1, 0] is True",
            {"edges": _edges([[0, 1]]), "num_nodes": 2},
            {"directed": True, "self_loops": False},
        ),
        Case(
            "a path 0 - 1 - 2, undirected, self-loops (the defaults)",
            {"edges": _edges([[0, 1], [1, 2]]), "num_nodes": 3},
        ),
        Case(
            "random directed graph with self-loops, 6 nodes, 8 edges",
            {"edges": _random_edges(6, 8, seed=2), "num_nodes": 6},
            {"directed": True, "self_loops": True},
        ),
    ],
    hidden_cases=over_devices_only(_mask_hidden),
    properties=(
        Property(
            "mask[i, j] is True for every edge j -> i (row = receiver)", _every_edge_is_allowed
        ),
        Property("the mask of an undirected graph is symmetric", _undirected_is_symmetric),
    ),
    mistakes=(
        Mistake(
            "the mask is transposed: mask[source, target] lets a node attend along its outgoing "
            "edges; row i must list the senders of the edges into i, mask[target, source]",
            source="""
                def adjacency_mask(edges, num_nodes, directed=False, self_loops=True):
                    mask = torch.zeros(num_nodes, num_nodes, dtype=torch.bool, device=edges.device)
                    mask[edges[:, 0], edges[:, 1]] = True
                    if not directed:
                        mask = mask | mask.T
                    if self_loops:
                        mask.fill_diagonal_(True)
                    return mask
                """,
        ),
        Mistake(
            "the self-loops are left out: with self_loops=True the diagonal is True",
            lambda edges, num_nodes, directed=False, self_loops=True: package_adjacency_mask(
                edges, num_nodes, directed=directed, self_loops=False
            ),
        ),
        Mistake(
            "an undirected edge is counted one way only: with directed=False, mask[j, i] is "
            "True as well",
            lambda edges, num_nodes, directed=False, self_loops=True: package_adjacency_mask(
                edges, num_nodes, directed=True, self_loops=self_loops
            ),
        ),
    ),
    forbidden=("selfattn_course.graphs.adjacency_mask",),
)


# --- task 2: graph_attention ----------------------------------------------------------------------


def graph_attention(
    x: torch.Tensor,
    edges: torch.Tensor,
    w_q: torch.Tensor,
    w_k: torch.Tensor,
    w_v: torch.Tensor,
) -> torch.Tensor:
    """One head of dot-product graph attention over a directed graph with self-loops:
    ``(..., n, d_in) -> (..., n, d)``, node ``i`` attending to itself and the sources of its
    incoming edges."""
    mask = package_adjacency_mask(edges, x.shape[-2], directed=True, self_loops=True)
    return scaled_dot_product_attention(x @ w_q, x @ w_k, x @ w_v, mask)


def _same_as_edge_attention(out, inputs) -> bool:
    """The sparse computation over the edge list plus the self-loops gives the same numbers."""
    x, edges = inputs["x"], inputs["edges"].long()
    nodes = torch.arange(x.shape[-2], device=edges.device)
    # edge_attention counts a repeated edge twice, the mask once: keep each edge once
    with_loops = torch.unique(torch.cat([edges, torch.stack([nodes, nodes], dim=1)]), dim=0)
    q, k, v = x @ inputs["w_q"], x @ inputs["w_k"], x @ inputs["w_v"]
    sparse = edge_attention(q, k, v, with_loops)
    tolerance = 1e-4 if x.dtype == torch.float32 else 1e-9
    return bool(torch.allclose(out, sparse, rtol=tolerance, atol=tolerance))


def _layer(n, d_in, d, *, batch=(), num_edges, seed, dtype=torch.float32, device="cpu"):
    def tensor(shape, offset, scale=1.0):
        return C.randn(shape, seed=seed + offset, dtype=dtype, device=device, scale=scale)

    return {
        "x": tensor((*batch, n, d_in), 0),
        "edges": _random_edges(n, num_edges, seed=seed + 1, device=device),
        "w_q": tensor((d_in, d), 2, scale=d_in**-0.5),
        "w_k": tensor((d_in, d), 3, scale=d_in**-0.5),
        "w_v": tensor((d_in, d), 4, scale=d_in**-0.5),
    }


def _graph_attention_hidden(dtype, device) -> list[Case]:
    def layer(**shape):
        return _layer(dtype=dtype, device=device, **shape)

    no_edges = layer(n=4, d_in=3, d=2, num_edges=1, seed=36)
    no_edges["edges"] = _edges([], device)
    return [
        Case(
            "random graph, 10 nodes, 25 edges, d_in = 6, d = 4",
            layer(n=10, d_in=6, d=4, num_edges=25, seed=30),
        ),
        Case(
            "a batch of 3 graphs' features (same edges)",
            layer(n=7, d_in=5, d=5, batch=(3,), num_edges=12, seed=31),
        ),
        Case(
            "leading dims (batch, heads) = (2, 2)",
            layer(n=5, d_in=4, d=3, batch=(2, 2), num_edges=6, seed=32),
        ),
        Case("one node", layer(n=1, d_in=3, d=2, num_edges=0, seed=33)),
        Case(
            "dense graph: 6 nodes, 40 edges (repeats possible)",
            layer(n=6, d_in=4, d=4, num_edges=40, seed=34),
        ),
        Case("no edge at all: every node attends to itself only", no_edges),
    ]


def _graph_attention_no_self_loops(x, edges, w_q, w_k, w_v):
    mask = package_adjacency_mask(edges, x.shape[-2], directed=True, self_loops=False)
    return scaled_dot_product_attention(x @ w_q, x @ w_k, x @ w_v, mask)


def _graph_attention_undirected(x, edges, w_q, w_k, w_v):
    mask = package_adjacency_mask(edges, x.shape[-2], directed=False, self_loops=True)
    return scaled_dot_product_attention(x @ w_q, x @ w_k, x @ w_v, mask)


GRAPH_ATTENTION = FunctionTask(
    id="ch10.graph_attention",
    title="a graph-attention layer",
    points=3,
    statement=r"""
        Write `graph_attention(x, edges, w_q, w_k, w_v)`: one head of dot-product graph
        attention (the graph transformer's layer without its extras). `x` `(..., n, d_in)` holds
        one feature vector per node, `edges` `(E, 2)` the **directed** edges as
        `(source, target)` pairs, and `w_q`, `w_k`, `w_v` are `(d_in, d)` matrices. Node $i$
        attends to **itself** and to the source $j$ of every edge $j \to i$, and to no other
        node: $h_i' = \sum_j \alpha_{ij}\, x_j W_V$ over $j \in \mathcal{N}(i) \cup \{i\}$,
        with $\alpha_{ij}$ the softmax over those $j$ of $(x_i W_Q) \cdot (x_j W_K) / \sqrt{d}$.
        Return the `(..., n, d)` outputs. Use the package's attention,
        `scaled_dot_product_attention(q, k, v, mask)`, with the right mask: your
        `adjacency_mask` of task 1 or the package's
        `adjacency_mask(edges, n, directed=True, self_loops=True)` (while this task is graded,
        `adjacency_mask` is the package's, so a mistake in task 1 costs points there only).
        """,
    reference=graph_attention,
    visible_cases=lambda: [
        Case(
            "by hand: 3 nodes, one edge 0 -> 1; nodes 0 and 2 attend only to themselves, "
            "so h'_0 = x_0 W_V and h'_2 = x_2 W_V",
            {
                "x": torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
                "edges": _edges([[0, 1]]),
                "w_q": torch.eye(2),
                "w_k": torch.eye(2),
                "w_v": torch.tensor([[1.0, 2.0], [3.0, 4.0]]),
            },
        ),
        Case("random graph, 6 nodes, 9 edges", _layer(6, 4, 3, num_edges=9, seed=3)),
        Case("a batch of 2, 5 nodes, 7 edges", _layer(5, 4, 4, batch=(2,), num_edges=7, seed=4)),
    ],
    hidden_cases=over_devices(_graph_attention_hidden),
    properties=(
        Property(
            "your outputs equal the package's edge_attention over the edges and the self-loops "
            "(node i attends to itself and the senders of the edges into i)",
            _same_as_edge_attention,
        ),
    ),
    mistakes=(
        Mistake(
            "the mask is transposed: node i attends to the targets of its outgoing edges; it "
            "must attend to the sources of its incoming edges (mask[i, j] for j -> i)",
            source="""
                from selfattn_course.attention import scaled_dot_product_attention


                def graph_attention(x, edges, w_q, w_k, w_v):
                    mask = adjacency_mask(edges, x.shape[-2], directed=True, self_loops=True)
                    return scaled_dot_product_attention(x @ w_q, x @ w_k, x @ w_v, mask.T)
                """,
        ),
        Mistake(
            "the self-loops are missing: each node also attends to itself",
            _graph_attention_no_self_loops,
        ),
        Mistake(
            "the graph is taken as undirected: an edge j -> i lets i attend to j, not j to i",
            _graph_attention_undirected,
        ),
        Mistake(
            "there is no mask: that is self-attention on the complete graph",
            lambda x, edges, w_q, w_k, w_v: scaled_dot_product_attention(x @ w_q, x @ w_k, x @ w_v),
        ),
    ),
    provided={"adjacency_mask": adjacency_mask},
)


# --- task 3: relabel_edges ------------------------------------------------------------------------


def relabel_edges(edges: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """The edges under new node labels, in the same order: new node ``a`` is old node
    ``perm[a]``, so old node ``j`` is new node ``argsort(perm)[j]``."""
    inverse = torch.argsort(perm)
    return inverse[edges.long()]


def _relabelled_layer_is_equivariant(new_edges, inputs) -> bool:
    """``edge_attention`` on the relabelled graph and features = the old outputs relabelled."""
    edges, perm = inputs["edges"].long(), inputs["perm"]
    n = len(perm)
    h = C.randn((n, 4), seed=97, dtype=torch.float64).to(edges.device)
    old = edge_attention(h, h, h, edges)
    new = edge_attention(h[perm], h[perm], h[perm], new_edges.long())
    return bool(torch.allclose(new, old[perm], rtol=1e-9, atol=1e-12))


def _perm(pairs_or_n, *, seed=None, device="cpu") -> torch.Tensor:
    if seed is None:
        return torch.tensor(pairs_or_n, device=device)
    return torch.randperm(pairs_or_n, generator=C.seeded_generator(seed)).to(device)


def _relabel_hidden(device) -> list[Case]:
    def case(name, edges, perm):
        return Case(name, {"edges": edges, "perm": perm})

    return [
        case(
            "random graph, 12 nodes, 30 edges, random permutation",
            _random_edges(12, 30, seed=50, device=device),
            _perm(12, seed=51, device=device),
        ),
        case(
            "a 5-cycle of labels, 8 edges",
            _random_edges(5, 8, seed=52, device=device),
            _perm([1, 2, 3, 4, 0], device=device),
        ),
        case(
            "identity permutation",
            _random_edges(4, 5, seed=53, device=device),
            _perm([0, 1, 2, 3], device=device),
        ),
        case("no edges (E = 0)", _edges([], device), _perm([2, 0, 1], device=device)),
        case("one node, its self-loop", _edges([[0, 0]], device), _perm([0], device=device)),
    ]


RELABEL_EDGES = FunctionTask(
    id="ch10.relabel_edges",
    title="relabel the nodes of a graph",
    points=2,
    statement=r"""
        Graph layers are permutation-equivariant: relabel the nodes and the outputs are
        relabelled the same way. A permutation `perm` `(n,)` gives the new labels: new node $a$
        is old node `perm[a]`, so the new features are `x[perm]`. Write
        `relabel_edges(edges, perm)` returning the same edges `(E, 2)` written with the new
        labels, **in the same order**, so that any graph layer gives
        `layer(x[perm], relabel_edges(edges, perm)) == layer(x, edges)[perm]`.
        """,
    reference=relabel_edges,
    visible_cases=lambda: [
        Case(
            "by hand: perm = [1, 2, 0] (new 0 = old 1, ...): old edge 0 -> 1 becomes 2 -> 0",
            {"edges": _edges([[0, 1]]), "perm": torch.tensor([1, 2, 0])},
        ),
        Case(
            "random graph, 6 nodes, 10 edges",
            {"edges": _random_edges(6, 10, seed=5), "perm": torch.tensor([3, 0, 5, 1, 2, 4])},
        ),
    ],
    hidden_cases=over_devices_only(_relabel_hidden),
    properties=(
        Property(
            "with your edges, edge attention on the relabelled features gives the old outputs "
            "relabelled",
            _relabelled_layer_is_equivariant,
        ),
    ),
    mistakes=(
        Mistake(
            "the permutation is applied instead of its inverse: perm maps new labels to old "
            "ones, so old node j gets the new label a with perm[a] = j (torch.argsort(perm))",
            source="""
                def relabel_edges(edges, perm):
                    return perm[edges]
                """,
        ),
    ),
)


# --- task 4: gat_favourite_keys -------------------------------------------------------------------

#: ``W h_j`` of the four nodes, and GAT's attention vector ``a = [a_1; a_2]``.
GAT_WH = ((1.0, 0.0), (0.0, 2.0), (-1.0, 1.5), (2.0, -1.0))
GAT_A1 = (1.0, 1.0)
GAT_A2 = (0.5, -1.0)


def _favourite_keys(wh, a1, a2) -> tuple[int, ...]:
    """The key with the largest GAT weight for each query on the complete graph."""
    wh, a1, a2 = torch.tensor(wh), torch.tensor(a1), torch.tensor(a2)
    scores = torch.nn.functional.leaky_relu((wh @ a1)[:, None] + (wh @ a2)[None, :], 0.2)
    return tuple(int(j) for j in scores.argmax(dim=-1))


def _dot_product_favourites(wh) -> tuple[int, ...]:
    wh = torch.tensor(wh)
    return tuple(int(j) for j in (wh @ wh.T).argmax(dim=-1))


GAT_FAVOURITE_KEYS = AnswerTask(
    id="ch10.favourite_keys",
    title="GAT's static attention",
    points=2,
    statement=r"""
        A GAT head scores the pair (query $i$, key $j$) with
        $e_{ij} = \operatorname{LeakyReLU}(a_1^\top W h_i + a_2^\top W h_j)$ (slope 0.2) and
        takes a softmax over the keys. On the complete graph of 4 nodes (self-loops included)
        with $W h_0 = (1, 0)$, $W h_1 = (0, 2)$, $W h_2 = (-1, 1.5)$, $W h_3 = (2, -1)$,
        $a_1 = (1, 1)$ and $a_2 = (0.5, -1)$: which key gets the largest weight from each query?
        Store the four key indices, for queries 0, 1, 2, 3, as
        `favourite_keys = (j0, j1, j2, j3)`. Before you compute: why can the answer not depend
        on the query, whatever the numbers?
        """,
    answer_type=Numbers(count=4, integers=True),
    expected=_favourite_keys(GAT_WH, GAT_A1, GAT_A2),
    properties=(
        Property(
            "every key index is a node, 0 to 3",
            lambda keys, _inputs: all(0 <= key <= 3 for key in keys),
        ),
    ),
    mistakes=(
        Mistake(
            "these are the favourites of dot-product scores W h_i · W h_j; GAT adds "
            "a_1ᵀ W h_i and a_2ᵀ W h_j, and the first term is the same for every key",
            source="""
                wh = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-1.0, 1.5], [2.0, -1.0]])
                favourite_keys = tuple((wh @ wh.T).argmax(dim=-1).tolist())
                """,
        ),
        Mistake(
            "you ranked the nodes by a_1ᵀ W h, the query's term; the keys are ranked by a_2ᵀ W h_j",
            source="""
                wh = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-1.0, 1.5], [2.0, -1.0]])
                a_1 = torch.tensor([1.0, 1.0])
                best = int((wh @ a_1).argmax())
                favourite_keys = (best, best, best, best)
                """,
        ),
        Mistake("a self-loop does not make a node its own favourite", (0, 1, 2, 3)),
    ),
)


TASKS = [ADJACENCY_MASK, GRAPH_ATTENTION, RELABEL_EDGES, GAT_FAVOURITE_KEYS]
