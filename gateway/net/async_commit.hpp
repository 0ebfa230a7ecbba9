#pragma once
// The one asynchronous step on a request path, for the network sessions (HTTP and MLLP): hand a write
// plan to the store's Writer and resume on the caller's executor once its commit is durable (or failed).
// Asio-only; included by gateway/net sources.
#include <boost/asio.hpp>
#include <functional>
#include <memory>

#include "fhir/result.hpp"
#include "gateway/store/writer.hpp"

namespace fhirgate::gateway {

template <class Token>
auto async_commit(store::Writer& writer, store::WritePlan plan, Token&& token) {
  namespace asio = boost::asio;
  return asio::async_initiate<Token, void(Status)>(
      [&writer](auto handler, store::WritePlan p) {
        auto ex = asio::get_associated_executor(handler);
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        auto complete = [ex, shared](Status s) {
          asio::post(ex, [shared, s = std::move(s)]() mutable { (*shared)(std::move(s)); });
        };
        Status queued = writer.submit(std::move(p), complete);
        if (!queued) complete(std::move(queued));
      },
      token, std::move(plan));
}

// Runs `work` on `pool` (long jobs that may wait on the writer, such as feed files) and resumes the
// caller on its own executor with the result.
template <class Result, class Pool, class Token>
auto async_offload(Pool& pool, std::function<Result()> work, Token&& token) {
  namespace asio = boost::asio;
  return asio::async_initiate<Token, void(Result)>(
      [&pool](auto handler, std::function<Result()> w) {
        auto ex = asio::get_associated_executor(handler);
        asio::post(pool, [ex, handler = std::move(handler), w = std::move(w)]() mutable {
          Result r = w();
          asio::post(ex,
                     [handler = std::move(handler), r = std::move(r)]() mutable { handler(std::move(r)); });
        });
      },
      token, std::move(work));
}

}  // namespace fhirgate::gateway
