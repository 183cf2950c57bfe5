# peaknas_server_search: the coordinator's search strategies (strategy.h) and Pareto-frontier
# arithmetic (frontier.h). Pure C++ over peaknas_search: no protobuf, no gRPC, no SQLite.
# Included from server/CMakeLists.txt.
add_library(peaknas_server_search STATIC
  ${CMAKE_CURRENT_LIST_DIR}/strategy.cc
  ${CMAKE_CURRENT_LIST_DIR}/pruning_strategy.cc
  ${CMAKE_CURRENT_LIST_DIR}/frontier.cc
)
target_link_libraries(peaknas_server_search PUBLIC peaknas_search)

if(PEAKNAS_BUILD_TESTS)
  add_executable(peaknas_server_search_test
    ${CMAKE_CURRENT_LIST_DIR}/strategy_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/pruning_strategy_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/frontier_test.cc
  )
  target_link_libraries(peaknas_server_search_test PRIVATE peaknas_server_search GTest::gtest_main)
  gtest_discover_tests(peaknas_server_search_test DISCOVERY_TIMEOUT 60 PROPERTIES LABELS server)
endif()
