#include "server/cluster_config.h"

#include <gtest/gtest.h>

namespace cairn::server {
namespace {

TEST(ClusterConfig, ParsesUrls) {
  auto url = ParseUrl("http://localhost:2379");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ("127.0.0.1", url->host);
  EXPECT_EQ(2379, url->port);
  EXPECT_EQ("http://127.0.0.1:2379", url->ToString());
  EXPECT_EQ(StatusCode::kUnsupported, ParseUrl("https://127.0.0.1:2379").status().code());
  EXPECT_FALSE(ParseUrl("127.0.0.1:2379").ok());
  EXPECT_FALSE(ParseUrl("http://127.0.0.1:0").ok());
  EXPECT_FALSE(ParseUrl("http://127.0.0.1:70000").ok());
  EXPECT_FALSE(ParseUrl("http://127.0.0.1:12x").ok());
  auto list = ParseUrlList("http://127.0.0.1:1,http://127.0.0.1:2");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(2u, list->size());
  EXPECT_FALSE(ParseUrlList("").ok());
}

TEST(ClusterConfig, EveryMemberDerivesTheSameIds) {
  const std::string cluster =
      "a=http://127.0.0.1:2380,b=http://127.0.0.1:2381,c=http://127.0.0.1:2382";
  auto a = ParseInitialCluster(cluster, "token", "a", {*ParseUrl("http://127.0.0.1:2380")});
  auto c = ParseInitialCluster(cluster, "token", "c", {*ParseUrl("http://127.0.0.1:2382")});
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(a->cluster_id, c->cluster_id);
  EXPECT_EQ(3u, a->members.size());
  EXPECT_NE(a->self, c->self);
  EXPECT_EQ(a->members.at(c->self).name, "c");
  auto other_token = ParseInitialCluster(cluster, "other", "a", {});
  ASSERT_TRUE(other_token.ok());
  EXPECT_NE(a->cluster_id, other_token->cluster_id) << "the token separates clusters";
  EXPECT_NE(a->self, other_token->self);
}

TEST(ClusterConfig, RefusesInconsistentFlags) {
  EXPECT_FALSE(ParseInitialCluster("a=http://127.0.0.1:2380", "t", "b", {}).ok());
  EXPECT_FALSE(ParseInitialCluster("a=http://127.0.0.1:2380", "t", "a",
                                   {*ParseUrl("http://127.0.0.1:9999")})
                   .ok())
      << "the advertised peer URL must be in --initial-cluster";
  EXPECT_FALSE(ParseInitialCluster("garbage", "t", "a", {}).ok());
  EXPECT_FALSE(ParseInitialCluster("", "t", "a", {}).ok());
}

}  // namespace
}  // namespace cairn::server
