#include "fallback/template_renderer.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

using kinfra::fallback::render_template;
using kinfra::fallback::template_vars;

TEST(Templates, EscapesDoubleBracesAndKeepsTripleBracesRaw) {
  template_vars v{{"name", "<b>\"x\" & 'y'</b>"}, {"html", "<i>ok</i>"}};
  EXPECT_EQ(render_template("a {{name}} b {{{html}}} c", v),
            "a &lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt; b <i>ok</i> c");
}

TEST(Templates, UnknownNamesBecomeEmptyAndSpacesAreAllowed) {
  template_vars v{{"x", "1"}};
  EXPECT_EQ(render_template("[{{ x }}][{{missing}}][{{{ missing }}}]", v), "[1][][]");
}

TEST(Templates, LeavesUnclosedBracesAlone) {
  EXPECT_EQ(render_template("a {{oops", {}), "a {{oops");
  EXPECT_EQ(render_template("}} {{", {}), "}} {{");
}

TEST(Templates, JsonIsMadeSafeForScriptElements) {
  EXPECT_EQ(kinfra::fallback::script_safe_json(R"({"m":"</script><!--&"})"),
            R"({"m":"\u003c/script\u003e\u003c!--\u0026"})");
}

TEST(Templates, AnOverrideFolderWinsAndTheEmbeddedPageIsTheFallback) {
  auto dir = std::filesystem::temp_directory_path() / ("kinfra-tpl-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  kinfra::fallback::template_store store(dir.string());
  EXPECT_NE(store.get("dashboard.html").find("KInfra Dashboard"), std::string::npos) << "embedded";
  std::ofstream(dir / "dashboard.html") << "custom {{title}}";
  EXPECT_EQ(store.get("dashboard.html"), "custom {{title}}");
  std::filesystem::permissions(dir / "dashboard.html", std::filesystem::perms::none);
  if (::geteuid() != 0) {  // root reads it anyway
    EXPECT_NE(store.get("dashboard.html").find("KInfra Dashboard"), std::string::npos) << "unreadable: embedded";
  }
  std::filesystem::remove_all(dir);
  EXPECT_NE(store.get("dashboard.html").find("KInfra Dashboard"), std::string::npos) << "after the override is gone";
  EXPECT_TRUE(store.get("nonexistent.html").empty());
}

TEST(Templates, ATruncatedOrUnreadableOverrideFallsBackToTheEmbeddedPage) {
  // What a full disk leaves behind (an empty file) and what a wrong deploy leaves (a folder where
  // a file should be): either way the page is the embedded one, never an empty answer.
  auto dir = std::filesystem::temp_directory_path() / ("kinfra-tpl-broken-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "loading.html");
  std::ofstream(dir / "dashboard.html").close();  // zero bytes
  kinfra::fallback::template_store store(dir.string());
  EXPECT_NE(store.get("dashboard.html").find("KInfra Dashboard"), std::string::npos) << "empty override";
  EXPECT_EQ(store.get("loading.html"), std::string(kinfra::fallback::template_store("").get("loading.html")))
      << "a folder named like the page";
  EXPECT_FALSE(store.get("loading.html").empty());
  std::filesystem::remove_all(dir);
}
