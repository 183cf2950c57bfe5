// The Pareto frontier of a job (DESIGN.md, "Search"): the three objectives maximize PSNR,
// minimize the predicted budgeted peak bytes, minimize the predicted 100-MP latency; NSGA-II's
// non-dominated sorting and crowding distance (Deb et al., 2002), which the evolution strategy
// ranks parents with; and the hypervolume the coordinator stores with every frontier snapshot.
//
// Dominance: a dominates b when a is no worse on all three objectives and strictly better on at
// least one. Identical points therefore never dominate each other: duplicates are all kept on
// the front and share a rank. Every result is a deterministic function of the input order.
//
// Thread-safety: pure functions of their arguments.
#ifndef PEAKNAS_SERVER_FRONTIER_H_
#define PEAKNAS_SERVER_FRONTIER_H_

#include <cstddef>
#include <vector>

#include "server/strategy.h"

namespace peaknas::server {

// True when `a` Pareto-dominates `b` on (psnr up, peak_bytes down, latency_100mp_s down).
bool Dominates(const Evaluated& a, const Evaluated& b);

// Indices (ascending) of the non-dominated points.
std::vector<std::size_t> ParetoFront(const std::vector<Evaluated>& points);

// The frontier of a job's results: indices into `done` of its non-dominated results, leaving
// out ancestors trained over an inference budget (Lineage::over_budget), in increasing peak
// bytes (ties: lower trial id first).
std::vector<std::size_t> FrontOfResults(const std::vector<Evaluated>& done);

// The frontier once `fresh` joins the results (at index done.size()), from the current one,
// `front` (as FrontOfResults returns it). A result dominated once stays dominated, so the front
// of all results is the front of `front` and `fresh`: the work is the size of the front, not
// of the job. Equal to FrontOfResults of the results with `fresh` appended, in the same order.
std::vector<std::size_t> AddToFront(const std::vector<Evaluated>& done,
                                    const std::vector<std::size_t>& front, const Evaluated& fresh);

// Whether two fronts have the same members, in whatever order.
bool SameMembers(std::vector<std::size_t> a, std::vector<std::size_t> b);

// NSGA-II rank of every point: 0 for the non-dominated front, 1 for the front of what remains,
// and so on. Same size and order as `points`.
std::vector<int> NondominatedSort(const std::vector<Evaluated>& points);

// NSGA-II crowding distance of each member of `front` (indices into `points`), in the order of
// `front`: per objective, the members are sorted and each gets the gap between its neighbours
// divided by the objective's range on the front, summed over objectives. The two extremes of
// every objective get +infinity (so a front of one or two points is all infinite). An
// objective whose range is zero adds nothing to interior members.
std::vector<double> CrowdingDistance(const std::vector<Evaluated>& points,
                                     const std::vector<std::size_t>& front);

// The reference point of the hypervolume: the worst value counted on each objective. The
// coordinator uses the noisy input's PSNR, the budget's bytes, and the job's fixed reference
// latency (JobSpec.hypervolume_reference_latency_s).
struct HypervolumeReference {
  double psnr = 0;             // dB; only points above it count
  double peak_bytes = 0;       // only points below it count
  double latency_100mp_s = 0;  // only points below it count
};

// The volume of the union of the boxes between the reference and each point, in the units
// dB x bytes x seconds: each point spans [0, psnr - ref.psnr] x [0, ref.peak_bytes - peak] x
// [0, ref.latency - latency]. Points not strictly better than the reference on every objective
// add nothing. Exact (slicing on latency, then a 2-D staircase per slice): O(n^2 log n), meant
// for frontiers of up to a few hundred points. Adding a dominated point never changes it;
// adding a point outside the dominated region strictly increases it.
double Hypervolume(const std::vector<Evaluated>& points, const HypervolumeReference& reference);

// Hypervolume on normalized axes: PSNR gain over reference.psnr in dB, peak as a fraction of
// reference.peak_bytes, latency as a fraction of reference.latency_100mp_s; the reference is
// (0, 1, 1). A point with gain g at peak fraction p and latency fraction l alone scores
// g x (1 - p) x (1 - l). Figures compare across jobs, versions and strategies that share a
// reference. Precondition: reference.peak_bytes > 0 and reference.latency_100mp_s > 0.
double NormalizedHypervolume(const std::vector<Evaluated>& points,
                             const HypervolumeReference& reference);

}  // namespace peaknas::server

#endif  // PEAKNAS_SERVER_FRONTIER_H_
