#pragma once
// The one asynchronous step on a request path, for the network sessions (HTTP and MLLP): hand a write
// plan to the store's Writer and resume on the caller's executor once its commit is durable (or failed).
// Asio-only; included by gateway/net sources.
#include <boost/asio.hpp>
#include <functional>
#include <memory>

#include "fhir/result.hpp"
#include "gateway/net/job.hpp"
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

// Drives a job (job.hpp) to its end from a session's coroutine: its io stages run here, its worker and
// background stages on those pools, its commit on the writer; each time the coroutine resumes on its own
// strand. A stage that throws ends the job's remaining work; the caller answers what it can.
template <class Pool>
boost::asio::awaitable<void> drive(net::Job& job, Pool& workers, Pool& background, store::Writer& writer) {
  namespace asio = boost::asio;
  for (;;) {
    switch (job.step()) {
      case net::Job::Next::worker:
        co_await async_offload<bool>(workers, std::function<bool()>([&job] {
                                       job.run_elsewhere();
                                       return true;
                                     }),
                                     asio::use_awaitable);
        break;
      case net::Job::Next::background:
        co_await async_offload<bool>(background, std::function<bool()>([&job] {
                                       job.run_elsewhere();
                                       return true;
                                     }),
                                     asio::use_awaitable);
        break;
      case net::Job::Next::commit: {
        Status committed = co_await async_commit(writer, job.take_plan(), asio::use_awaitable);
        job.committed(std::move(committed));
        break;
      }
      case net::Job::Next::done:
        co_return;
    }
  }
}

}  // namespace fhirgate::gateway
