// Cluster configuration from etcd-style flags: URLs, the initial cluster, member and cluster ids.
//
// Design note. etcd names members by name and peer URLs in --initial-cluster; ids are derived,
// not chosen. Cairn does the same, deterministically: a member's id is a 64-bit FNV-1a hash of
// its name, its sorted peer URLs and the cluster token (never 0, which means "nobody" in the
// consensus core), and the cluster id hashes the sorted member ids with the token. So every member
// computes the same ids from the same flags, and a restart with the same flags keeps them.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/strong_types.h"

namespace cairn::server {

// "http://host:port" (https is refused until TLS exists). "localhost" is taken as 127.0.0.1.
struct Url {
  std::string host;
  uint16_t port = 0;
  std::string ToString() const;          // http://host:port
  std::string HostPort() const;          // host:port
};

Result<Url> ParseUrl(std::string_view text);
// A comma-separated list of URLs, at least one.
Result<std::vector<Url>> ParseUrlList(std::string_view text);

struct ClusterMember {
  std::string name;
  NodeId id{};
  std::vector<Url> peer_urls;
};

struct ClusterConfig {
  uint64_t cluster_id = 0;
  std::map<NodeId, ClusterMember> members;
  NodeId self{};
};

// Parses --initial-cluster ("name=url,name=url,...", a name may repeat for several URLs) and finds
// `self_name` in it; its URLs must include every --initial-advertise-peer-urls URL.
Result<ClusterConfig> ParseInitialCluster(std::string_view initial_cluster, std::string_view token,
                                          std::string_view self_name,
                                          const std::vector<Url>& advertise_peer_urls);

}  // namespace cairn::server
