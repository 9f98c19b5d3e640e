#include "server/cluster_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace cairn::server {
namespace {

uint64_t Fnv1a(std::string_view bytes, uint64_t hash = 14695981039346656037ull) {
  for (unsigned char byte : bytes) {
    hash ^= byte;
    hash *= 1099511628211ull;
  }
  return hash;
}

std::vector<std::string_view> Split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

}  // namespace

std::string Url::ToString() const { return fmt::format("http://{}", HostPort()); }
std::string Url::HostPort() const { return fmt::format("{}:{}", host, port); }

Result<Url> ParseUrl(std::string_view text) {
  constexpr std::string_view kScheme = "http://";
  if (text.rfind("https://", 0) == 0) {
    return Status::Unsupported(fmt::format("{}: TLS (https) is not supported yet", text));
  }
  if (text.rfind(kScheme, 0) != 0) {
    return Status::InvalidArgument(fmt::format("{}: a URL must start with http://", text));
  }
  std::string_view rest = text.substr(kScheme.size());
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  const size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return Status::InvalidArgument(fmt::format("{}: expected http://host:port", text));
  }
  Url url;
  url.host = std::string(rest.substr(0, colon));
  if (url.host == "localhost") url.host = "127.0.0.1";
  const std::string_view port = rest.substr(colon + 1);
  unsigned value = 0;
  auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (error != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
    return Status::InvalidArgument(fmt::format("{}: bad port", text));
  }
  url.port = static_cast<uint16_t>(value);
  return url;
}

Result<std::vector<Url>> ParseUrlList(std::string_view text) {
  std::vector<Url> urls;
  for (std::string_view part : Split(text, ',')) {
    if (part.empty()) continue;
    CAIRN_ASSIGN_OR_RETURN(Url url, ParseUrl(part));
    urls.push_back(std::move(url));
  }
  if (urls.empty()) return Status::InvalidArgument(fmt::format("'{}': no URL given", text));
  return urls;
}

Result<ClusterConfig> ParseInitialCluster(std::string_view initial_cluster, std::string_view token,
                                          std::string_view self_name,
                                          const std::vector<Url>& advertise_peer_urls) {
  std::map<std::string, std::vector<Url>> by_name;
  for (std::string_view part : Split(initial_cluster, ',')) {
    if (part.empty()) continue;
    const size_t equals = part.find('=');
    if (equals == std::string_view::npos || equals == 0) {
      return Status::InvalidArgument(
          fmt::format("--initial-cluster: '{}' is not name=http://host:port", part));
    }
    CAIRN_ASSIGN_OR_RETURN(Url url, ParseUrl(part.substr(equals + 1)));
    by_name[std::string(part.substr(0, equals))].push_back(std::move(url));
  }
  if (by_name.empty()) return Status::InvalidArgument("--initial-cluster names no member");
  ClusterConfig config;
  std::vector<uint64_t> ids;
  for (auto& [name, urls] : by_name) {
    std::vector<std::string> sorted;
    for (const Url& url : urls) sorted.push_back(url.ToString());
    std::sort(sorted.begin(), sorted.end());
    uint64_t hash = Fnv1a(name);
    for (const std::string& url : sorted) hash = Fnv1a(url, Fnv1a("|", hash));
    hash = Fnv1a(token, Fnv1a("|", hash));
    if (hash == 0) hash = 1;
    const NodeId id(hash);
    if (config.members.count(id) != 0) {
      return Status::InvalidArgument("--initial-cluster: two members hash to the same id");
    }
    ids.push_back(hash);
    config.members[id] = ClusterMember{name, id, urls};
    if (name == self_name) config.self = id;
  }
  if (config.self == NodeId(0)) {
    return Status::InvalidArgument(fmt::format(
        "--initial-cluster has no member named '{}' (set --name or --initial-cluster)", self_name));
  }
  const auto& own_urls = config.members[config.self].peer_urls;
  for (const Url& url : advertise_peer_urls) {
    const bool listed = std::any_of(own_urls.begin(), own_urls.end(), [&](const Url& own) {
      return own.ToString() == url.ToString();
    });
    if (!listed) {
      return Status::InvalidArgument(fmt::format(
          "--initial-cluster must include {}={} (from --initial-advertise-peer-urls)", self_name,
          url.ToString()));
    }
  }
  std::sort(ids.begin(), ids.end());
  uint64_t cluster = Fnv1a(token);
  for (uint64_t id : ids) cluster = Fnv1a(std::string_view(reinterpret_cast<const char*>(&id), 8), cluster);
  config.cluster_id = cluster == 0 ? 1 : cluster;
  return config;
}

}  // namespace cairn::server
