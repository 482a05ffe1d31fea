#include "server/report/svg_plot.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <regex>
#include <set>

#include "testing/xml.h"

namespace hpsearch::server::svg {
namespace {

using hpsearch::testing::XmlElement;
using hpsearch::testing::XmlReader;

std::unique_ptr<XmlElement> ParseOrFail(const std::string& doc) {
  XmlReader reader;
  std::unique_ptr<XmlElement> root = reader.Parse(doc);
  INFO(reader.error());
  INFO(doc);
  REQUIRE(root != nullptr);
  REQUIRE(root->name == "svg");
  return root;
}

// The translate(X,Y) of a point group.
std::pair<double, double> Translation(const XmlElement& e) {
  std::smatch m;
  std::string transform = e.Attribute("transform");
  REQUIRE(std::regex_match(transform, m, std::regex(R"(translate\(([-0-9.]+),([-0-9.]+)\))")));
  return {std::stod(m[1]), std::stod(m[2])};
}

// A tick label as drawn: its anchor position and text.
struct Label {
  double x = 0;
  double y = 0;
  std::string text;
};

std::vector<Label> TickLabels(const XmlElement& root, const std::string& axis_class) {
  std::vector<Label> labels;
  for (const XmlElement* axis : root.ByClass(axis_class)) {
    for (const XmlElement* e : axis->ByClass("tick-label")) {
      labels.push_back({std::stod(e->Attribute("x")), std::stod(e->Attribute("y")), e->text});
    }
  }
  return labels;
}

// Characters, not bytes, of UTF-8 text.
size_t Chars(const std::string& text) {
  return static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

// No two x labels (centred, 11 px sans-serif: at most ~6.6 px per character on average) overlap;
// no two y labels sit closer than a line of text (12 px).
void CheckLabelsApart(const std::vector<Label>& labels, bool horizontal) {
  for (size_t i = 0; i + 1 < labels.size(); ++i) {
    const Label& a = labels[i];
    const Label& b = labels[i + 1];
    INFO("'" << a.text << "' at " << a.x << "," << a.y << " and '" << b.text << "' at " << b.x
             << "," << b.y);
    if (horizontal) {
      CHECK(std::abs(b.x - a.x) >= 6.6 * static_cast<double>(Chars(a.text) + Chars(b.text)) / 2);
    } else {
      CHECK(std::abs(b.y - a.y) >= 12);
    }
  }
}

TEST_CASE("LinearTicks picks 1-2-5 steps that enclose the data", "[server][svg]") {
  Ticks t = LinearTicks(0.13, 0.87, 6, true);
  CHECK(t.step == Approx(0.2));
  CHECK(t.lo == Approx(0.0));
  CHECK(t.hi == Approx(1.0));
  REQUIRE(t.values.size() == 6);
  CHECK(t.values[0] == 0.0);  // exactly zero, not 1e-17
  CHECK(t.values[3] == Approx(0.6));

  Ticks wide = LinearTicks(3.2, 4812, 5, true);
  CHECK(wide.step == Approx(1000));
  CHECK(wide.lo == Approx(0));
  CHECK(wide.hi == Approx(5000));

  Ticks inside = LinearTicks(0.13, 0.87, 6, false);  // a fixed domain: ticks stay inside
  CHECK(inside.values.front() >= 0.13);
  CHECK(inside.values.back() <= 0.87);
  CHECK(inside.values.front() == Approx(0.2));

  Ticks flat = LinearTicks(2.0, 2.0, 5, true);  // one value: still a usable range around it
  CHECK(flat.lo < 2.0);
  CHECK(flat.hi > 2.0);
}

TEST_CASE("LogTicks uses decades and their 2 and 5 multiples", "[server][svg]") {
  CHECK(LogTicks(1e-5, 1e-3) == std::vector<double>{1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3});
  // Less than a decade: every multiple, so the axis still has several labels.
  std::vector<double> narrow = LogTicks(1.1e-3, 4.9e-3);
  CHECK(narrow == std::vector<double>{2e-3, 3e-3, 4e-3});
  // Over twelve 1-2-5 ticks: 1 and 3 per decade.
  CHECK(LogTicks(1e-5, 1e-1) ==
        std::vector<double>{1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1});
  // Many decades: only powers of ten.
  std::vector<double> wide = LogTicks(1e-9, 1e3);
  CHECK(wide.size() == 13);
  CHECK(wide.front() == 1e-9);
}

TEST_CASE("FormatTick writes as many decimals as the step needs", "[server][svg]") {
  CHECK(FormatTick(0.6, 0.2, false) == "0.6");
  CHECK(FormatTick(0.25, 0.05, false) == "0.25");
  CHECK(FormatTick(3000, 1000, false) == "3000");
  CHECK(FormatTick(0, 0.1, false) == "0");
  CHECK(FormatTick(1e-5, 0, false) == "1e-5");  // a short exponent
  // Log axes: plain from 0.01 to 1000, a short exponent outside.
  CHECK(FormatTick(1e-5, 0, true) == "1e-5");
  CHECK(FormatTick(3e-4, 0, true) == "3e-4");
  CHECK(FormatTick(0.002, 0, true) == "2e-3");
  CHECK(FormatTick(0.05, 0, true) == "0.05");
  CHECK(FormatTick(200, 0, true) == "200");
  CHECK(FormatTick(20000, 0, true) == "2e4");
}

TEST_CASE("Escape makes any text safe in XML text and attributes", "[server][svg]") {
  CHECK(Escape("a<b & \"c\" 'd'>") == "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;");
  CHECK(Escape(std::string("bell\a")) == "bell ");
}

TEST_CASE("A plot is well-formed XML and puts each point where its data says", "[server][svg]") {
  PlotOptions options;
  options.title = "Accuracy <by> \"trial\" & more";
  options.x.label = "learning rate";
  options.x.scale = Scale::kLog;
  options.x.min = 1e-4;
  options.x.max = 1e-2;
  options.y.label = "val_accuracy";
  options.y.min = 0;
  options.y.max = 1;
  Plot plot(options);
  Series s;
  s.name = "complete <trials>";
  s.line = Line::kNone;
  s.points = {{1e-3, 0.5, "trial 0"}, {1e-4, 0.0, "trial 1"}, {1e-2, 1.0, "trial 2 & co"}};
  plot.Add(s);
  const std::string doc = plot.Render();
  auto root = ParseOrFail(doc);

  // Title and legend text come back exactly after escaping.
  REQUIRE(root->ByName("title").size() >= 1);
  CHECK(root->ByName("title")[0]->text == options.title);
  CHECK(root->ByClass("plot-title")[0]->text == options.title);
  CHECK(root->ByClass("legend")[0]->AllText().find("complete <trials>") != std::string::npos);

  const Frame f = plot.PlotFrame();
  std::vector<const XmlElement*> points = root->ByClass("point");
  REQUIRE(points.size() == 3);
  // 1e-3 is the middle of [1e-4, 1e-2] on a log axis; 0.5 the middle of [0, 1].
  auto [x0, y0] = Translation(*points[0]);
  CHECK(x0 == Approx(f.left + f.width / 2).margin(0.01));
  CHECK(y0 == Approx(f.top + f.height / 2).margin(0.01));
  auto [x1, y1] = Translation(*points[1]);  // the bottom-left corner
  CHECK(x1 == Approx(f.left).margin(0.01));
  CHECK(y1 == Approx(f.top + f.height).margin(0.01));
  auto [x2, y2] = Translation(*points[2]);  // the top-right corner
  CHECK(x2 == Approx(f.left + f.width).margin(0.01));
  CHECK(y2 == Approx(f.top).margin(0.01));
  CHECK(points[2]->ByName("title")[0]->text == "trial 2 & co");
  // The axis says it is logarithmic and labels its decades.
  CHECK(root->ByClass("x-axis")[0]->AllText().find("1e-3") != std::string::npos);
  CHECK(root->ByClass("x-axis")[0]->AllText().find("(log scale)") != std::string::npos);

  // The same input renders the same bytes.
  CHECK(plot.Render() == doc);
}

TEST_CASE("A linear axis from data encloses every point", "[server][svg]") {
  Plot plot(PlotOptions{});
  Series s;
  s.points = {{1, 0.45}, {2, 0.81}, {3, 0.62}};
  plot.Add(s);
  auto root = ParseOrFail(plot.Render());
  const Frame f = plot.PlotFrame();
  for (const XmlElement* p : root->ByClass("point")) {
    auto [x, y] = Translation(*p);
    CHECK(x >= f.left - 0.01);
    CHECK(x <= f.left + f.width + 0.01);
    CHECK(y >= f.top - 0.01);
    CHECK(y <= f.top + f.height + 0.01);
  }
  // 0.45..0.81 widens to nice ticks 0.4..0.9, so 0.45 sits a tenth of the height above the bottom.
  REQUIRE(plot.YPixel(0.45));
  CHECK(*plot.YPixel(0.45) == Approx(f.top + f.height * 0.9));
  std::string y_labels = root->ByClass("y-axis")[0]->AllText();
  CHECK(y_labels.find("0.4") != std::string::npos);
  CHECK(y_labels.find("0.9") != std::string::npos);
}

TEST_CASE("NaN, infinite and non-positive-on-log values are skipped and break the line",
          "[server][svg]") {
  PlotOptions options;
  options.y.scale = Scale::kLog;
  Plot plot(options);
  Series s;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  s.points = {{1, 1.0}, {2, 2.0}, {3, nan}, {4, -1.0}, {5, std::numeric_limits<double>::infinity()},
              {6, 3.0}, {7, 4.0}};
  plot.Add(s);
  auto root = ParseOrFail(plot.Render());
  CHECK(root->ByClass("point").size() == 4);
  std::vector<const XmlElement*> lines = root->ByClass("line");
  REQUIRE(lines.size() == 2);  // 1-2 and 6-7
  for (const XmlElement* line : lines) {
    const std::string points = line->Attribute("points");
    CHECK(points.find("nan") == std::string::npos);
    CHECK(std::count(points.begin(), points.end(), ',') == 2);
  }
  CHECK(root->ByClass("empty").empty());
}

TEST_CASE("A plot without drawable data says so and is still well-formed", "[server][svg]") {
  PlotOptions options;
  options.empty_message = "no complete trial yet";
  Plot empty(options);
  auto root = ParseOrFail(empty.Render());
  REQUIRE(root->ByClass("empty").size() == 1);
  CHECK(root->ByClass("empty")[0]->text == "no complete trial yet");
  CHECK(root->ByClass("point").empty());

  Plot only_nan(options);
  Series s;
  s.name = "nothing";
  s.points = {{std::nan(""), 1.0}};
  only_nan.Add(s);
  auto root2 = ParseOrFail(only_nan.Render());
  CHECK(root2->ByClass("empty").size() == 1);
  CHECK(root2->ByClass("point").empty());
  CHECK(root2->ByClass("line").empty());
}

TEST_CASE("A categorical axis draws bands and spreads the points of one band", "[server][svg]") {
  PlotOptions options;
  options.x.scale = Scale::kCategorical;
  options.x.categories = {"8", "16", "32"};
  options.y.min = 0;
  options.y.max = 1;
  Plot plot(options);
  Series s;
  s.line = Line::kNone;
  s.points = {{1, 0.2}, {1, 0.4}, {2, 0.6}};
  plot.Add(s);
  auto root = ParseOrFail(plot.Render());
  CHECK(root->ByClass("band").size() == 3);
  const Frame f = plot.PlotFrame();
  const double band = f.width / 3;
  std::vector<const XmlElement*> points = root->ByClass("point");
  REQUIRE(points.size() == 3);
  auto [xa, ya] = Translation(*points[0]);
  auto [xb, yb] = Translation(*points[1]);
  auto [xc, yc] = Translation(*points[2]);
  // Both points of band 1 stay inside it, apart, around its centre.
  CHECK(xa > f.left + band);
  CHECK(xb < f.left + 2 * band);
  CHECK(xa < xb);
  CHECK((xa + xb) / 2 == Approx(f.left + 1.5 * band).margin(0.02));
  CHECK(xc == Approx(f.left + 2.5 * band).margin(0.01));  // alone: the centre of band 2
  CHECK(yc == Approx(f.top + f.height * 0.4).margin(0.01));
  std::string labels = root->ByClass("x-axis")[0]->AllText();
  CHECK(labels.find("16") != std::string::npos);
  CHECK(labels.find("32") != std::string::npos);

  // A highlight (same tooltip) drawn over a point takes that point's place, not a new slot.
  Plot highlighted(options);
  Series all;
  all.points = {{0, 0.1, "trial 0"}, {0, 0.9, "trial 1"}};
  Series best;
  best.marker = Marker::kDiamond;
  best.points = {{0, 0.9, "trial 1"}};
  highlighted.Add(all);
  highlighted.Add(best);
  auto root2 = ParseOrFail(highlighted.Render());
  std::vector<const XmlElement*> marks = root2->ByClass("point");
  REQUIRE(marks.size() == 3);
  CHECK(Translation(*marks[2]).first == Translation(*marks[1]).first);
  CHECK(Translation(*marks[0]).first < Translation(*marks[1]).first);
}

TEST_CASE("Integer ticks never fall between whole numbers", "[server][svg]") {
  PlotOptions options;
  options.x.min = 0.5;
  options.x.max = 2.5;
  options.x.integer_ticks = true;
  Plot plot(options);
  Series s;
  s.points = {{1, 0.5}, {2, 0.6}};
  plot.Add(s);
  auto root = ParseOrFail(plot.Render());
  const std::string labels = root->ByClass("x-axis")[0]->AllText();
  CHECK(labels.find("1.5") == std::string::npos);
  CHECK(labels.find("0.5") == std::string::npos);
  CHECK(root->ByClass("x-axis")[0]->ByName("text").size() == 2 + 1);  // 1, 2 and the axis label
}

TEST_CASE("Series on the secondary axis use the right-hand scale", "[server][svg]") {
  PlotOptions options;
  options.x.min = 1;
  options.x.max = 3;
  options.y.min = 0;
  options.y.max = 1;
  options.y2 = AxisOptions{};
  options.y2->min = 0;
  options.y2->max = 4;
  options.y2->label = "loss";
  Plot plot(options);
  Series accuracy;
  accuracy.name = "val_accuracy";
  accuracy.points = {{1, 0.5}};
  Series loss;
  loss.name = "train_loss";
  loss.secondary_y = true;
  loss.marker = Marker::kSquare;
  loss.points = {{1, 2.0}, {3, 1.0}};
  plot.Add(accuracy);
  plot.Add(loss);
  auto root = ParseOrFail(plot.Render());
  const Frame f = plot.PlotFrame();
  std::vector<const XmlElement*> points = root->ByClass("point");
  REQUIRE(points.size() == 3);
  CHECK(Translation(*points[0]).second == Approx(f.top + f.height / 2).margin(0.01));  // 0.5 of 1
  CHECK(Translation(*points[1]).second == Approx(f.top + f.height / 2).margin(0.01));  // 2 of 4
  CHECK(Translation(*points[2]).second == Approx(f.top + f.height * 0.75).margin(0.01));
  CHECK(root->ByClass("y2-axis").size() == 1);
  CHECK(root->ByClass("legend-entry").size() == 2);
}

TEST_CASE("A step series draws horizontal then vertical segments", "[server][svg]") {
  PlotOptions options;
  options.x.min = 0;
  options.x.max = 2;
  options.y.min = 0;
  options.y.max = 2;
  Plot plot(options);
  Series best;
  best.step = true;
  best.marker = Marker::kNone;
  best.points = {{0, 0}, {1, 1}, {2, 2}};
  plot.Add(best);
  auto root = ParseOrFail(plot.Render());
  std::vector<const XmlElement*> lines = root->ByClass("line");
  REQUIRE(lines.size() == 1);
  const std::string pts = lines[0]->Attribute("points");
  CHECK(std::count(pts.begin(), pts.end(), ',') == 5);  // 3 points + 2 corners
  CHECK(root->ByClass("point").empty());
}

TEST_CASE("Pinned points sit on the x axis and do not stretch the y axis", "[server][svg]") {
  Plot plot(PlotOptions{});
  Series values;
  values.points = {{0, 0.5}, {1, 0.7}};
  Series failed;
  failed.name = "failed";
  failed.pin_bottom = true;
  failed.marker = Marker::kCross;
  failed.points = {{2, -1000.0}, {3, std::nan("")}};
  plot.Add(values);
  plot.Add(failed);
  auto root = ParseOrFail(plot.Render());
  const Frame f = plot.PlotFrame();
  std::vector<const XmlElement*> points = root->ByClass("point");
  REQUIRE(points.size() == 4);
  CHECK(Translation(*points[2]).second == Approx(f.top + f.height - 6));
  CHECK(Translation(*points[3]).second == Approx(f.top + f.height - 6));
  CHECK(Translation(*points[3]).first > Translation(*points[2]).first);
  // The y axis still spans 0.5..0.7 (nice: 0.5..0.7), not -1000.
  std::string labels = root->ByClass("y-axis")[0]->AllText();
  CHECK(labels.find("-1000") == std::string::npos);
  CHECK(labels.find("0.5") != std::string::npos);
}

TEST_CASE("A legend longer than the plot ends with how many entries it left out", "[server][svg]") {
  PlotOptions options;
  options.height = 200;  // room for 6 rows of 18 px
  Plot plot(options);
  for (int i = 0; i < 20; ++i) {
    Series s;
    s.name = "trial " + std::to_string(i);
    s.color = PaletteColor(i);
    s.points = {{0, static_cast<double>(i)}};
    plot.Add(s);
  }
  auto root = ParseOrFail(plot.Render());
  const XmlElement* legend = root->ByClass("legend")[0];
  CHECK(legend->ByClass("legend-entry").size() == 5);
  CHECK(legend->AllText().find("and 15 more") != std::string::npos);
  CHECK(root->ByClass("point").size() == 20);  // every point is still drawn
}

TEST_CASE("A log axis labels 1-2-5 or 1-3 decades over its whole range without overlap",
          "[server][svg]") {
  // The learning-rate plot of issue 20: 0.0007 0.0008 0.0009 0.001 ran together and the labels
  // stopped at 0.001 although the data reached 0.003.
  const auto [lo, hi, width] = GENERATE(table<double, double, int>({
      {5e-4, 3e-3, 640},
      {7e-4, 3e-3, 320},
      {1e-5, 3e-3, 640},
      {1e-5, 3e-3, 240},
      {1e-5, 1e-3, 640},
      {1e-6, 1e2, 640},
      {1e-12, 1e6, 300},
      {1.1e-3, 1.3e-3, 640},  // too narrow for two 1..9 multiples
      {2, 50000, 400},
  }));
  INFO("range " << lo << " .. " << hi << ", " << width << " px");
  PlotOptions options;
  options.width = width;
  options.x.scale = Scale::kLog;
  options.y.scale = Scale::kLog;
  options.height = 220;
  Plot plot(options);
  Series s;
  s.line = Line::kNone;
  s.points = {{lo, lo}, {hi, hi}};
  plot.Add(s);
  auto root = ParseOrFail(plot.Render());
  for (bool horizontal : {true, false}) {
    std::vector<Label> labels = TickLabels(*root, horizontal ? "x-axis" : "y-axis");
    REQUIRE(labels.size() >= 2);
    CheckLabelsApart(labels, horizontal);
    std::vector<double> values;
    for (const Label& l : labels) {
      INFO(l.text);
      // Short forms only: never 0.0007 or 1e-05.
      CHECK(l.text.rfind("0.000", 0) == std::string::npos);
      CHECK(l.text.find("e-0") == std::string::npos);
      values.push_back(std::stod(l.text));
    }
    // The labels cover the data's range: neither end lies further from the outermost label than
    // the labels lie apart.
    double widest = 1;
    for (size_t i = 0; i + 1 < values.size(); ++i) {
      widest = std::max(widest, values[i + 1] / values[i]);
    }
    CHECK(values.front() <= lo * widest * 1.001);
    CHECK(values.back() >= hi / widest / 1.001);
  }
  if (lo == 5e-4 && hi == 3e-3) {
    const std::string text = root->ByClass("x-axis")[0]->AllText();
    for (const char* tick : {"5e-4", "1e-3", "2e-3", "3e-3"}) {
      INFO(tick);
      CHECK(text.find(tick) != std::string::npos);
    }
  }
  if (lo == 1e-5 && hi == 3e-3 && width == 640) {
    const std::string text = root->ByClass("x-axis")[0]->AllText();
    for (const char* tick : {"1e-5", "1e-4", "1e-3"}) {
      INFO(tick);
      CHECK(text.find(tick) != std::string::npos);
    }
  }
}

TEST_CASE("Linear and categorical labels never overlap, even in a narrow plot", "[server][svg]") {
  PlotOptions options;
  options.width = 220;
  Plot plot(options);
  Series s;
  s.points = {{0.000123, 1234567.0}, {98765.4321, 7654321.0}};
  plot.Add(s);
  auto root = ParseOrFail(plot.Render());
  std::vector<Label> x = TickLabels(*root, "x-axis");
  REQUIRE(x.size() >= 2);
  CheckLabelsApart(x, true);
  CheckLabelsApart(TickLabels(*root, "y-axis"), false);

  PlotOptions bands;
  bands.x.scale = Scale::kCategorical;
  for (int i = 0; i < 12; ++i) {
    bands.x.categories.push_back("a_rather_long_category_" + std::to_string(i));
  }
  Plot categorical(bands);
  Series c;
  c.points = {{0, 1}, {11, 2}};
  categorical.Add(c);
  auto root2 = ParseOrFail(categorical.Render());
  std::vector<Label> names = TickLabels(*root2, "x-axis");
  REQUIRE(names.size() == 12);
  CheckLabelsApart(names, true);
  CHECK(names[0].text.rfind("a_r", 0) == 0);  // shortened, with an ellipsis
}

TEST_CASE("An integer axis has whole-number ticks and spreads overlapping points",
          "[server][svg]") {
  // epochs 1-2, as in issue 20: ticks 1 and 2 only, half a unit of room at each end.
  PlotOptions options;
  options.x.integer_ticks = true;
  options.x.jitter = true;
  options.y.min = 0;
  options.y.max = 1;
  Plot plot(options);
  Series complete;
  complete.line = Line::kNone;
  for (int i = 0; i < 5; ++i) {
    complete.points.push_back({1, 0.5, "trial " + std::to_string(i)});  // all on one spot
  }
  complete.points.push_back({1, 0.9, "trial 5"});  // alone at its height: stays put
  complete.points.push_back({2, 0.5, "trial 6"});
  Series best;
  best.line = Line::kNone;
  best.marker = Marker::kDiamond;
  best.points = {{1, 0.5, "trial 3"}};  // the best drawn over trial 3: the same place
  plot.Add(complete);
  plot.Add(best);
  const std::string doc = plot.Render();
  auto root = ParseOrFail(doc);
  std::vector<Label> labels = TickLabels(*root, "x-axis");
  REQUIRE(labels.size() == 2);
  CHECK(labels[0].text == "1");
  CHECK(labels[1].text == "2");
  const double one = *plot.XPixel(1), two = *plot.XPixel(2);
  CHECK(*plot.XPixel(0.5) == Approx(plot.PlotFrame().left));  // the domain is 0.5 .. 2.5
  std::vector<const XmlElement*> points = root->ByClass("point");
  REQUIRE(points.size() == 8);
  std::set<double> xs;
  for (int i = 0; i < 5; ++i) {
    const double px = Translation(*points[i]).first;
    xs.insert(px);
    CHECK(std::abs(px - one) <= (two - one) / 3);  // stays nearer its value than any other
  }
  CHECK(xs.size() == 5);                                             // no two on one spot
  CHECK(Translation(*points[5]).first == Approx(one).margin(0.01));  // nothing to avoid
  CHECK(Translation(*points[6]).first == Approx(two).margin(0.01));
  CHECK(Translation(*points[7]).first == Translation(*points[3]).first);
  CHECK(plot.Render() == doc);  // deterministic
}

TEST_CASE("An integer log axis labels whole numbers only", "[server][svg]") {
  // batch sizes 8..12 on a log axis: too narrow for 1..9 multiples, so plain ticks, whole only.
  for (double hi : {12.0, 64.0}) {
    PlotOptions options;
    options.x.scale = Scale::kLog;
    options.x.integer_ticks = true;
    Plot plot(options);
    Series s;
    s.points = {{8, 1}, {hi, 2}};
    plot.Add(s);
    auto root = ParseOrFail(plot.Render());
    std::vector<Label> labels = TickLabels(*root, "x-axis");
    INFO("8 .. " << hi);
    REQUIRE(labels.size() >= 2);
    for (const Label& l : labels) {
      INFO(l.text);
      CHECK(l.text.find('.') == std::string::npos);
      CHECK(l.text.find('e') == std::string::npos);
    }
  }
}

TEST_CASE("A plot with two y axes has a legend group per axis", "[server][svg]") {
  PlotOptions options;
  options.x.min = 1;
  options.x.max = 3;
  options.y.label = "accuracy / F1";
  options.y2 = AxisOptions{};
  options.y2->label = "loss";
  Plot plot(options);
  for (const char* name : {"val_accuracy", "val_f1", "train_loss", "val_loss"}) {
    Series s;
    s.name = name;
    s.secondary_y = std::string(name).find("loss") != std::string::npos;
    s.points = {{1, 0.5}, {2, 0.7}};
    plot.Add(s);
  }
  auto root = ParseOrFail(plot.Render());
  REQUIRE(root->ByClass("legend-y").size() == 1);
  REQUIRE(root->ByClass("legend-y2").size() == 1);
  const XmlElement& left = *root->ByClass("legend-y")[0];
  const XmlElement& right = *root->ByClass("legend-y2")[0];
  CHECK(left.ByClass("legend-heading")[0]->text == "left axis: accuracy / F1");
  CHECK(right.ByClass("legend-heading")[0]->text == "right axis: loss");
  CHECK(left.AllText().find("val_accuracy") != std::string::npos);
  CHECK(left.AllText().find("val_f1") != std::string::npos);
  CHECK(left.AllText().find("loss") == std::string::npos);
  CHECK(right.ByClass("legend-entry").size() == 2);
  CHECK(right.AllText().find("train_loss") != std::string::npos);
  CHECK(right.AllText().find("val_loss") != std::string::npos);
  // The legend fits beside the plot: its headings start right of the secondary axis's labels.
  const double heading_x = std::stod(left.ByClass("legend-heading")[0]->Attribute("x"));
  const Frame f = plot.PlotFrame();
  CHECK(heading_x >= f.left + f.width + options.margin_y2);
  CHECK(heading_x + 6.6 * 24 <= options.width);
}

TEST_CASE("Bars grow from zero to their value", "[server][svg]") {
  PlotOptions options;
  options.x.scale = Scale::kCategorical;
  options.x.categories = {"lr", "epochs", "batch"};
  Plot plot(options);
  Series bars;
  bars.bars = true;
  bars.points = {{0, 0.7}, {1, 0.2}, {2, 0.1}};
  plot.Add(bars);
  auto root = ParseOrFail(plot.Render());
  std::vector<const XmlElement*> rects = root->ByClass("bar");
  REQUIRE(rects.size() == 3);
  CHECK(root->ByClass("point").empty());
  const double zero = *plot.YPixel(0);
  for (size_t i = 0; i < rects.size(); ++i) {
    const double y = std::stod(rects[i]->Attribute("y"));
    const double h = std::stod(rects[i]->Attribute("height"));
    CHECK(y + h == Approx(zero).margin(0.02));
    CHECK(y == Approx(*plot.YPixel(bars.points[i].y)).margin(0.02));
  }
  CHECK(std::stod(rects[0]->Attribute("height")) > std::stod(rects[1]->Attribute("height")));
}

TEST_CASE("A compact series draws its lines and its markers as one path each, ids in order",
          "[server][svg]") {
  PlotOptions options;
  options.x.min = 0;
  options.x.max = 5;
  options.y.min = 0;
  options.y.max = 3;
  Series s;
  s.name = "trials";
  s.color = "#123456";
  s.compact = true;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  s.points = {{1, 1, "a"}, {2, 2, "b"}, {nan, nan}, {3, 1, "c"}, {4, 2, "d"}, {nan, nan}, {4.5, 1}};
  const std::vector<int> ids = {7, 7, -1, 9, 9, -1, 11};
  for (size_t i = 0; i < ids.size(); ++i) s.points[i].id = ids[i];
  Plot plot(options);
  plot.Add(s);
  const std::string doc = plot.Render();
  auto root = ParseOrFail(doc);
  CHECK(root->ByClass("point").empty());
  CHECK(root->ByName("polyline").empty());
  CHECK(root->ByName("title").size() == 1);  // the document's own; none per point
  // One line path: a subpath per run of two or more points (the lone last point has none).
  std::vector<const XmlElement*> lines = root->ByClass("line");
  REQUIRE(lines.size() == 1);
  CHECK(lines[0]->Attribute("data-ids") == "7 9");
  const std::string d = lines[0]->Attribute("d");
  CHECK(std::count(d.begin(), d.end(), 'M') == 2);
  CHECK(lines[0]->Attribute("stroke") == "#123456");
  // One marker path: a subpath per drawn point, each opening at its own "M", the circle's at its
  // left edge (4 px left of the point).
  std::vector<const XmlElement*> markers = root->ByClass("points");
  REQUIRE(markers.size() == 1);
  CHECK(markers[0]->Attribute("data-ids") == "7 7 9 9 11");
  const std::string md = markers[0]->Attribute("d");
  CHECK(std::count(md.begin(), md.end(), 'M') == 5);
  std::smatch m;
  REQUIRE(std::regex_search(md, m, std::regex(R"(^M([-0-9.]+),([-0-9.]+)a)")));
  CHECK(std::stod(m[1]) == Approx(*plot.XPixel(1) - 4).margin(0.06));
  CHECK(std::stod(m[2]) == Approx(*plot.YPixel(1)).margin(0.06));
  // The legend still shows the series.
  CHECK(root->ByClass("legend")[0]->AllText().find("trials") != std::string::npos);
  // Drawn the usual way, the same series is elements per point and per run.
  s.compact = false;
  Plot usual(options);
  usual.Add(s);
  auto usual_root = ParseOrFail(usual.Render());
  CHECK(usual_root->ByClass("point").size() == 5);
  CHECK(usual_root->ByName("polyline").size() == 2);
}

TEST_CASE("The XML reader used by these tests rejects malformed documents", "[server][svg]") {
  // The checker must be able to fail, or the tests above prove nothing.
  for (const char* bad : {"<svg><g></svg>", "<svg a=1/>", "<svg>a & b</svg>", "<svg/><svg/>",
                          "<svg a=\"1\" a=\"2\"/>", "<svg>x < y</svg>", "<svg>&nbsp;</svg>"}) {
    XmlReader reader;
    INFO(bad);
    CHECK(reader.Parse(bad) == nullptr);
    CHECK_FALSE(reader.error().empty());
  }
  XmlReader reader;
  auto ok = reader.Parse("<?xml version=\"1.0\"?>\n<svg a='&lt;&#65;'><!-- c --><t>x</t></svg>\n");
  REQUIRE(ok != nullptr);
  CHECK(ok->Attribute("a") == "<A");
  CHECK(ok->children.size() == 1);
}

}  // namespace
}  // namespace hpsearch::server::svg
