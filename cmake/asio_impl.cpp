// The one translation unit that holds the compiled parts of Asio and Beast.
// Every other file sees them through BOOST_ASIO_SEPARATE_COMPILATION and
// BOOST_BEAST_SEPARATE_COMPILATION (set on the kinfra_asio target), which keeps
// each module's compile time down.
#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
