// OpenListener: a bound, listening TCP acceptor for an http://host:port URL (peer channels,
// metrics), or an error naming the flag and the reason (address in use, not an IP address).
#pragma once

#include <asio.hpp>

#include <memory>
#include <string_view>

#include "base/status.h"
#include "server/cluster_config.h"

namespace cairn::server {

inline Result<std::unique_ptr<asio::ip::tcp::acceptor>> OpenListener(asio::io_context& io,
                                                                    const Url& url,
                                                                    std::string_view flag) {
  asio::error_code error;
  const auto address = asio::ip::make_address(url.host, error);
  if (error) {
    return Status::InvalidArgument(
        fmt::format("{} {}: '{}' is not an IP address", flag, url.ToString(), url.host));
  }
  auto acceptor = std::make_unique<asio::ip::tcp::acceptor>(io);
  const asio::ip::tcp::endpoint endpoint(address, url.port);
  acceptor->open(endpoint.protocol(), error);
  if (!error) acceptor->set_option(asio::ip::tcp::acceptor::reuse_address(true), error);
  if (!error) acceptor->bind(endpoint, error);
  if (!error) acceptor->listen(asio::socket_base::max_listen_connections, error);
  if (error) {
    return Status::IoError(fmt::format("{} {}: {}", flag, url.ToString(), error.message()));
  }
  return acceptor;
}

}  // namespace cairn::server
